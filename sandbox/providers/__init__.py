"""Local apps that speak each provider's documented HTTP protocol and record what they got."""
