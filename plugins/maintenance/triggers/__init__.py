"""Custom triggers (they must live outside dags/: the triggerer imports them from plugins/)."""
