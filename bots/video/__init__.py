"""Escalation of a case to a Jitsi video call: conference ids, JWTs, widget events."""
