"""What BITV 2.0 asks of a public body's web offer beyond the widget itself
(issue "Accessible to everyone, understood by everyone").

- ``GET /accessibility``: the accessibility statement (Erklärung zur
  Barrierefreiheit, BITV 2.0 § 7 and the EU model statement): how far the chat
  meets the requirements, what is not accessible and why, how the statement
  was made, the feedback channel and the enforcement procedure. What the town
  must say comes from ``accessibility:`` in buergerchat.yaml; what the product
  knows about itself (its known gaps, how it is checked) is filled in here.
- Feedback: a form on that page that works without JavaScript (``POST
  /accessibility``) and the same as JSON for other clients (``POST
  /api/v1/accessibility/feedback``). Each becomes a mail in the durable outbox to
  the town's feedback address, under the abuse limits of everything anonymous.
- ``GET /leichte-sprache``: how the chat works, in Leichte Sprache.

The widget links all three (and the town's DGS videos, ``sign_language_url``)
on its start page, from ``GET /api/v1/status``.
"""
