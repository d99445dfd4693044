"""The records an operator keeps: incidents, components, subscribers, users, tokens, audit."""
