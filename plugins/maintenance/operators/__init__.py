"""Operators: execute() = hook -> check -> store -> alert state -> raise when a check pages."""
