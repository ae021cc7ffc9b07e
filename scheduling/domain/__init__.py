"""Pure scheduling domain (HOLD-RULES.md §1, SCH-*): calendar, dose arithmetic and the dosing window.

Standard library only. No clock reads: `now`/`at` and the ward's zone always come in as arguments.
"""
