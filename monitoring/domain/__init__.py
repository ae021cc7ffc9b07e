"""The pure pre-dose rule engine: HOLD-RULES.md §3 as data (rulesets), its input (snapshot), the evaluation
(engine), CTCAE grading (ctcae) and display groupings (panels). Standard library only; ``now`` is always passed in."""
