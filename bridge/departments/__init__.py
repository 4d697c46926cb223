"""Departments, staff, topics and office hours (``departments.yaml``): the core's
model of who answers what and when. Routing decides with it; the citizen API
shows it; the virtual citizen office will reuse the office-hours rules."""
