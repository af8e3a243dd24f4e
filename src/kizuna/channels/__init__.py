"""Channel providers behind one small protocol (see ``kizuna.channels.base``)."""
