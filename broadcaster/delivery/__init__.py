"""The delivery pipeline: channel contract, registry, outbox/ledger, fan-out, circuit, dead letters."""
