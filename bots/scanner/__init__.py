"""Attachment scanning: content allow-list, safe file names and clamd verdicts.

Import the parts from their modules (``bots.scanner.clamd_client`` …). This file stays
empty on purpose: the Synapse module imports ``clamd_client`` and ``verdict`` inside
Synapse's own Python, where the bridge's other dependencies are not installed.
"""
