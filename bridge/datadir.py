"""The data folder is private: it holds Synapse's database (with access tokens in
plain text and every message), the bridge database (names, e-mail addresses,
phone numbers), held uploads, mails, transcripts, secrets and logs.

``buergerchat`` sets the umask to 077 before it writes anything, so every file it
or its children (Synapse, clamd) create is 0600 and every folder 0700; at start
the folder itself and what an older version left in it are tightened the same
way.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("buergerchat.datadir")
PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Files made from now on are readable by their owner only."""
    os.umask(PRIVATE_UMASK)


def make_private(data_dir: Path) -> int:
    """Create ``data_dir`` as 0700 and take group and other access from every
    file and folder below it; returns how many modes were changed."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = 0
    for path in [data_dir, *data_dir.rglob("*")]:
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            try:
                path.chmod(mode & 0o700)
            except OSError as e:
                log.warning("could not make %s private: %s", path, e)
                continue
            changed += 1
    if changed:
        log.info("made %d file(s) in %s private (owner only)", changed, data_dir)
    return changed
