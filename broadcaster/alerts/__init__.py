"""From the first alert to the first honest update: inbound alerts become draft incidents.

``sources`` reads each sender's payload (Alertmanager, Grafana, PagerDuty, Opsgenie, Uptime Kuma,
Gatus) into ``Alert`` values and ``auth`` checks who sent it; ``rules`` says which alert means which
components, words and playbook level; ``drafts`` groups alerts into drafts (one per problem, however
often it is delivered) and publishes them through ``broadcaster.posting`` (``publication`` is the
posting service's part); ``autopublish`` is the worker's cron for rules that opted in, ``notices``
tells the commanders that a draft waits.
"""
