"""Hand-over to partner authorities over federation (issue "Federated
hand-over"): ``!transfer <partner>:<department>``, the citizen's consent, the
partner taking the case in the same room (bots.handover.town, .partner)."""

from .bot import HandoverBot

__all__ = ["HandoverBot"]
