"""A logging filter for Synapse: request lines without the parts that carry
personal data.

Synapse logs every request line. An upload's query string names the file
(``/upload?filename=Antrag-Erika-Muster.pdf``) and a download's last path
segment too (``/download/server/id/Antrag-Erika-Muster.pdf``); once a case is
erased, its file names must not live on in the log. This filter drops query
strings and download file names from every log message; method, path, status,
timings and user stay (access tokens Synapse redacts itself).

Used in log.yaml (``buergerchat run`` renders it)::

    filters:
      personal:
        (): buergerchat_logfilter.PersonalDataFilter
"""

from __future__ import annotations

import logging
import re

#: A Matrix or Synapse path's query string.
_QUERY = re.compile(r"(/_(?:matrix|synapse)/[^\s\"?]*)\?[^\s\"]*")
#: The optional file name after /download/<server>/<media id>.
_FILENAME = re.compile(r"(/download/[^/\s\"]+/[^/\s\"?]+)/[^\s\"?]+")


def scrub(text: str) -> str:
    return _FILENAME.sub(r"\1/…", _QUERY.sub(r"\1?…", text))


class PersonalDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record: leave it to the handler
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
