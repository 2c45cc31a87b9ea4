# SPDX-License-Identifier: GPL-2.0-or-later
"""QGIS 3.22 ... QGIS 4 (Qt 6): the enum values the plugin uses, from the scoped enums when this QGIS has them.

QGIS 3.30+ moved many enums into ``Qgis`` (``Qgis.ProcessingSourceType.Raster``
for ``QgsProcessing.TypeRaster`` ...); QGIS 4 with PyQt6 drops the old unscoped
names. Each constant below is the new spelling when it exists, else the QGIS 3.22
one; the rest of the plugin uses these constants only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qgis import core
from qgis.PyQt import QtNetwork

# where the names are looked up: qgis.core's and QtNetwork's classes (a class QGIS 4 drops is simply absent)
_NAMESPACE = {**vars(QtNetwork), **vars(core)}


def pick(*paths: str, namespace: Mapping[str, Any] = _NAMESPACE) -> Any:
    """The value of the first dotted name that exists in ``namespace``.

    ``pick("Qgis.LayerType.Raster", "QgsMapLayerType.RasterLayer")``: the scoped enum on QGIS 3.30+, else the old one.
    """
    for path in paths:
        head, *rest = path.split(".")
        value = namespace.get(head)
        for name in rest:
            value = getattr(value, name, None)
        if value is not None:
            return value
    raise AttributeError(f"none of {', '.join(paths)} exists in this QGIS")


NUMBER_INTEGER = pick("Qgis.ProcessingNumberParameterType.Integer", "QgsProcessingParameterNumber.Integer")
NUMBER_DOUBLE = pick("Qgis.ProcessingNumberParameterType.Double", "QgsProcessingParameterNumber.Double")
SOURCE_RASTER = pick("Qgis.ProcessingSourceType.Raster", "QgsProcessing.TypeRaster")
SOURCE_FILE = pick("Qgis.ProcessingSourceType.File", "QgsProcessing.TypeFile")
FILE_BEHAVIOR_FILE = pick("Qgis.ProcessingFileParameterBehavior.File", "QgsProcessingParameterFile.File")
SOURCE_VECTOR_POLYGON = pick("Qgis.ProcessingSourceType.VectorPolygon", "QgsProcessing.TypeVectorPolygon")
FLAG_ADVANCED = pick("Qgis.ProcessingParameterFlag.Advanced", "QgsProcessingParameterDefinition.FlagAdvanced")
FLAG_CAN_CANCEL = pick("Qgis.ProcessingAlgorithmFlag.CanCancel", "QgsProcessingAlgorithm.FlagCanCancel")
LAYER_RASTER = pick("Qgis.LayerType.Raster", "QgsMapLayerType.RasterLayer")
LAYER_HINT_RASTER = pick("QgsProcessingUtils.LayerHint.Raster")
MESSAGE_INFO = pick("Qgis.MessageLevel.Info", "Qgis.Info")
MESSAGE_WARNING = pick("Qgis.MessageLevel.Warning", "Qgis.Warning")
MESSAGE_CRITICAL = pick("Qgis.MessageLevel.Critical", "Qgis.Critical")
# Qt 6 has only the scoped names; PyQt5 has both
HTTP_STATUS = pick("QNetworkRequest.Attribute.HttpStatusCodeAttribute", "QNetworkRequest.HttpStatusCodeAttribute")
REDIRECT_POLICY_ATTRIBUTE = pick(
    "QNetworkRequest.Attribute.RedirectPolicyAttribute", "QNetworkRequest.RedirectPolicyAttribute"
)
REDIRECT_NO_LESS_SAFE = pick(
    "QNetworkRequest.RedirectPolicy.NoLessSafeRedirectPolicy", "QNetworkRequest.NoLessSafeRedirectPolicy"
)
NETWORK_NO_ERROR = pick("QNetworkReply.NetworkError.NoError", "QNetworkReply.NoError")
