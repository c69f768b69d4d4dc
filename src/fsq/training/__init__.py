"""Training loops (one explicit loop per stage) and their small helpers."""
