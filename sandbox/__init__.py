"""The sandbox: local servers that speak each provider's protocol and record what they got.

``broadcaster up`` starts them (``python -m sandbox``) and points every channel at them, so
one update can be seen reaching every channel without an account anywhere. The tests use the
same apps. Nothing here imports the product: it plays the outside world.
"""
