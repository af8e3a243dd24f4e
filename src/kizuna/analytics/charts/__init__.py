"""Charts a marketer can read: matplotlib Figures with Japanese and English labels."""
