"""Every loss term a student or teacher trains on, and their declared, weighted sum (declared.py).

May import the core (distill/*.py) only; TermInputs (inputs.py) is the bottom: no term imports upward.
"""
