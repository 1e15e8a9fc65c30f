"""Push rules: the server-default rule set now; evaluation and pushers in a later issue."""
