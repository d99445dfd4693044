"""Moving in: components, history and subscribers from Atlassian Statuspage, Cachet or a public page.

Each source module (``statuspage``, ``public_v2``, ``cachet``) reads its API into one ``Bundle``
(``model``); ``writer.write_bundle`` writes it in one transaction through the domain tables,
with the original times, idempotent by source id (``import_sources``). History is never
posted: nothing is sent to anyone for it. ``subscribers_csv`` reads and writes subscribers
as CSV.
"""
