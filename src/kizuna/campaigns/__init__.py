"""One-shot campaigns: definition, pre-send checks, approval, and the frozen send.

A campaign sends one segment one message (A/B variants by weight) once, with a
control group held out: ``definition`` reads and checks the spec, ``checks`` finds
what must stop or warn before sending (with the number that made it so),
``flow`` moves it from draft through approval, and ``send`` freezes the audience
and queues its messages in one transaction when it is due.
"""

__all__: list[str] = []
