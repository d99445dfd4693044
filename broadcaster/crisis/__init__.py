"""Crisis tools: playbooks, contacts, drills and the post-incident report."""
