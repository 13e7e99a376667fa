"""xiaomanlv_locker: the 50-compartment state machine, pickup codes, persistence, kiosk.

Empty until the locker issue lands; see BRIEF.md for what goes here.
"""
