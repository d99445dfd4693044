"""What customers see: the page, feeds, live events, sign-up and preferences."""
