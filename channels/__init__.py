"""One module per delivery channel; each implements ``channels.base``'s contract."""
