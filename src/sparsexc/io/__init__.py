"""sparsexc.io: readers and writers for real multi-label data files.

* :func:`read_xc` / :func:`write_xc` / :func:`read_xc_splits`: Extreme Classification Repository text files;
* :func:`read_arff`: Mulan (ARFF + XML) and MEKA (``-C n``) ARFF files;
* :func:`read_mat`: MATLAB ``.mat`` files (``data``/``target`` or train/test);
* :func:`read_svmlight`: headerless svmlight/LibSVM multi-label files (napkinXC, LibMultiLabel), via scikit-learn;
* :func:`read_any` / :func:`read_all`: pick one of the above from the file (``read_all`` reads several files,
  svmlight ones together so that they share their widths).

Every reader raises :class:`DataFormatError` (a ``ValueError``) naming the file, line and field on bad input.
"""

from .arff import read_arff
from .data import MultiLabelData
from .dispatch import read_all, read_any
from .errors import DataFormatError
from .mat import read_mat
from .svmlight import read_svmlight
from .xc import read_xc, read_xc_splits, write_xc

__all__ = [
    "DataFormatError",
    "MultiLabelData",
    "read_all",
    "read_any",
    "read_arff",
    "read_mat",
    "read_svmlight",
    "read_xc",
    "read_xc_splits",
    "write_xc",
]
