"""broadcaster: write one incident update, fan it out to every channel, prove they all agree."""

__version__ = "0.1.0"
