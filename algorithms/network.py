# SPDX-License-Identifier: GPL-2.0-or-later
"""Downloads through QGIS's network manager, so the user's proxy and authentication settings apply.

The engine (``core/``) never imports QGIS: the algorithms hand :func:`download` to
``core.model.patch_consistency.set_downloader``, which checks the file's hash itself.
"""

from __future__ import annotations

import os

from qgis.core import QgsNetworkAccessManager
from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtNetwork import QNetworkRequest

from . import compat


def download(url: str, destination: str) -> None:
    """Write the file at ``url`` to ``destination`` (blocking; safe in a Processing worker thread).

    Raises OSError with QGIS's reason when the request fails.
    """
    request = QNetworkRequest(QUrl(url))
    request.setAttribute(compat.REDIRECT_POLICY_ATTRIBUTE, compat.REDIRECT_NO_LESS_SAFE)
    reply = QgsNetworkAccessManager.instance().blockingGet(request, forceRefresh=True)
    if reply.error() != compat.NETWORK_NO_ERROR:
        raise OSError(f"cannot download {url}: {reply.errorString()}")
    status = reply.attribute(compat.HTTP_STATUS)
    if status is not None and int(status) >= 400:
        raise OSError(f"cannot download {url}: HTTP status {int(status)}")
    with open(destination, "wb") as stream:
        stream.write(bytes(reply.content()))
        stream.flush()
        os.fsync(stream.fileno())
