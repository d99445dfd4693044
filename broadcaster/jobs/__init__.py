"""The arq side: queue (producer), worker (consumer) and the jobs it runs besides the fan-out."""
