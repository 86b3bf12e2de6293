"""Where each registered data set can be downloaded from: URLs, mirror paths, sizes and pinned checksums.

Every checksum here is the SHA-256 of a file seen byte for byte (the copies in ``../shared/datasets``, whose
``SOURCE.md`` files name the same upstream commits, and the upstream archives read from those commits); none
is guessed. Where no copy could be seen (the large XC sets) the checksum is ``None``: such a download is
checked by parsing it, and the SHA-256 it had is reported.

Two kinds of checksum:

* ``RemoteFile.sha256``: of the bytes downloaded (a plain file, or the archive as a whole);
* ``Member.sha256``: of a file as written into the data set folder, after extraction/decompression. This is
  how Bibtex (its zip is pinned through its members, so that any faithful re-packing verifies too) and
  ``imdb`` (``Imdb.arff``, the decompressed ``Imdb.arff.bz2``; the local copy is re-gzipped) are checked.

Mirror layout (``--mirror URL`` / ``SPARSEXC_MIRROR``): file ``f`` is fetched from ``URL/<f.mirror_path>``:

* ``mulan/<dir>/<file>``: tsoumakas/mulan ``data/multi-label/<dir>/<file>``;
* ``meka/Imdb.arff.bz2``: Waikato/meka ``src/main/data/Imdb.arff.bz2``;
* ``multi-label-dataset/<file>.mat``: ZesenChen/multi-label-dataset ``<file>.mat``;
* ``xc/<Zip>.zip``: the XC repository zips (``Bibtex.zip``, ``Eurlex.zip``, ``Wiki10.zip``,
  ``AmazonCat.zip``, ``WikipediaLarge-500K.zip``, ``Amazon.zip``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MIRROR_ENV",
    "ORIGINS",
    "Member",
    "Origin",
    "RemoteFile",
    "origin_of",
    "remote_files",
]

MIRROR_ENV = "SPARSEXC_MIRROR"


@dataclass(frozen=True)
class Member:
    """A file of the data set folder made from a download.

    Attributes
    ----------
    name : str
        File name in the data set folder (one that ``load`` reads).
    member : str or None
        Path inside a zip/tar/rar archive; None for a plain file or a ``.gz``/``.bz2`` stream.
    sha256 : str or None
        SHA-256 of the file as written (None: unknown, checked by parsing instead).
    size : int or None
        Its size in bytes, where known.
    """

    name: str
    member: str | None = None
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class RemoteFile:
    """One file to download.

    Attributes
    ----------
    url : str
        Upstream URL.
    mirror_path : str
        Its path under a mirror's base URL.
    archive : str
        ``"plain"``, ``"zip"``, ``"tar"`` (any compression), ``"gz"``, ``"bz2"`` or ``"rar"``.
    members : tuple of Member
        The files it yields in the data set folder.
    sha256, size : str or None, int or None
        Of the downloaded bytes, where known.
    """

    url: str
    mirror_path: str
    archive: str
    members: tuple[Member, ...]
    sha256: str | None = None
    size: int | None = None

    @property
    def file_name(self) -> str:
        return self.mirror_path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Origin:
    """Where a group of sets comes from, for ``datasets list`` and the docs."""

    key: str
    title: str
    url: str
    licence: str


ORIGINS: dict[str, Origin] = {
    o.key: o
    for o in (
        Origin(
            "xc",
            "The Extreme Classification Repository (Bhatia et al.)",
            "http://manikvarma.org/downloads/XC/XMLRepository.html",
            "none stated; cite the XC repository and the set's original source",
        ),
        Origin(
            "mulan",
            "Mulan (tsoumakas/mulan @43f6389, data/multi-label/)",
            "https://github.com/tsoumakas/mulan",
            "none stated (Mulan's code is GPL-3.0); cite the set's original paper and Mulan",
        ),
        Origin(
            "meka",
            "MEKA (Waikato/meka @f9ffe23, src/main/data/)",
            "https://github.com/Waikato/meka",
            "none stated (MEKA's code is GPL-3.0); cite Read et al., Machine Learning 85(3), 2011",
        ),
        Origin(
            "mld",
            "ZesenChen/multi-label-dataset @5f20611 (.mat copies)",
            "https://github.com/ZesenChen/multi-label-dataset",
            "none stated; cite the set's original publisher",
        ),
        Origin(
            "wordnet",
            "WordNet 3.0 (Debian wordnet-base; no download here)",
            "https://wordnet.princeton.edu",
            "WordNet 3.0 licence (raw/wordnet-3.0/LICENSE)",
        ),
        Origin(
            "debian",
            "a Debian 12 package index dump (no download here)",
            "https://www.debian.org",
            "none stated for the dump; Debian archive metadata",
        ),
    )
}

_MULAN = "https://raw.githubusercontent.com/tsoumakas/mulan/43f6389095ad71984264db4387a8074b22bc7d4a/data/multi-label/"
_MLD = "https://raw.githubusercontent.com/ZesenChen/multi-label-dataset/5f20611a8d70aa0de7eb6edf6cf568d271ed0043/"
_MEKA = "https://raw.githubusercontent.com/Waikato/meka/f9ffe231e06ebaa75b4a95c5cdeb737419731621/src/main/data/"
# the XC zip, byte-exact (md5 78db23bd26486d4188502abf6a39b856 as published for Bibtex.zip), in a GitHub repository:
# the XC page's own Drive id (0B3lPMIHmG6vGcy1xM2pJZ09MMGM) stopped working
_BIBTEX_ZIP = (
    "https://raw.githubusercontent.com/renan-cunha/Bandits/054fc26627cb136a94b5394a5aab7ab3b2509704/"
    "src/contextual_bandits/Bibtex.zip"
)
_DRIVE = "https://drive.google.com/uc?export=download&id="

# sha256 and size of the files in ../shared/datasets (byte-identical to the upstream files at the commits above)
_PINNED: dict[str, tuple[str, int]] = {
    "corel16k001-mat/Corel16k001.mat": (
        "48e2d5f89bf0a558e1eb7b7eb07be138c287bd11eb6210933f4650ed86a3750f",
        306455,
    ),
    "languagelog-mat/languagelog.mat": (
        "d909e2f6adc1730c9ec14839252ea461cf9cdfb0fda610bece05bf5ed050557a",
        165085,
    ),
    "mulan-bibtex/bibtex-test.arff": (
        "9b03329cde64d3f994bdf7fbbac3f3b10fe185c311cb9ae725475f59c7f3f922",
        1215637,
    ),
    "mulan-bibtex/bibtex-train.arff": (
        "8dcc9de6e0b2cebaec8c1f4fac78431adeeb73cfd3ab879b530a66d366e59174",
        2292961,
    ),
    "mulan-bibtex/bibtex.xml": (
        "08fe20013c1e75dcf1888c185f5187c95e76495b8518ce289b4d3afce38d1232",
        5880,
    ),
    "mulan-birds/birds-test.arff": (
        "51ba6326d65ccdd7c755b6461280eb6d2769c7f59d8e12fd4250f91e6ca28326",
        540883,
    ),
    "mulan-birds/birds-train.arff": (
        "8f215db6ee163149901e753977f631ba8bea0e0e8e1abc42b234414822f8ae36",
        539367,
    ),
    "mulan-birds/birds.xml": (
        "0f4ea547b2b3d538c8402662daf689e0d4520cc8b4f5ba113c2e7c01700f010f",
        889,
    ),
    "mulan-cal500/cal500.arff": (
        "cfe6097ba5fd6e8584e54911ab9783dcab34e898446b7c9370c71d477eae56d3",
        492857,
    ),
    "mulan-cal500/cal500.xml": (
        "877e128531268d7661faa3e44f7bb43cbcda829c0895e49879168775b192728c",
        7901,
    ),
    "mulan-corel5k/Corel5k-test-sparse.arff": (
        "e8f8e9cd052c43ba7bdfdf99d242f461fc8c2a03163466d921e576887b51d8a7",
        60876,
    ),
    "mulan-corel5k/Corel5k-train-sparse.arff": (
        "19eb253c447144bea74ffa86b4731a56022addae2ba7d0aab72ad07fdc02e9b3",
        339535,
    ),
    "mulan-corel5k/Corel5k.xml": (
        "54ef6a6ccb7ca9b77524052b34b306d5d501661a5609b9d1cc7085b2b597679d",
        11222,
    ),
    "mulan-delicious/delicious-test.arff": (
        "2dfb01723a819914b0ca83361177ed413ce3f2169851d9f228d4692915d63944",
        757565,
    ),
    "mulan-delicious/delicious-train.arff": (
        "030186cdb542ebdd32052fcdbb1ebe30115b3a22518c1b4b198c45eb827aebe1",
        3056590,
    ),
    "mulan-delicious/delicious.xml": (
        "4e0c0f93c7d86a39b9fca4aaefaa00e9428f2c80277732dfbf03ca48e2c14da2",
        34303,
    ),
    "mulan-emotions/emotions-test.arff": (
        "f13d4b746b7b5c8eb484bd751d6ac463d4560dff998a93516a5c1fe35daf6c8f",
        132007,
    ),
    "mulan-emotions/emotions-train.arff": (
        "bbe704106c79bb8fb99c1d1d2e9bde081d6a2daeb01f100862f11fd91a3c1f98",
        252080,
    ),
    "mulan-emotions/emotions.xml": (
        "dbce8e6ccbbb2fcbfd9e9edbb230d7ed12692c6e13f59fdbc0161fa9b6cf2dc0",
        323,
    ),
    "mulan-enron/categories.txt": (
        "55ed4182b82c7495e9b2a283cf812f6c1f3792de6bd09902d5361bf2472fe975",
        1866,
    ),
    "mulan-enron/enron-test.arff": (
        "2f3aad54a8f54caaab4ab01246fe9dd385ba944a2633028f52747b57eac5474e",
        324140,
    ),
    "mulan-enron/enron-train.arff": (
        "2988cefc1cdf7a8004a20ef84615cc8fa1b5d7434c16687283b41454e2d9d194",
        607799,
    ),
    "mulan-enron/enron.xml": (
        "ed40c92d7f613eed51714912cab10dddc4ce456262137d8fef230d44c7f4457b",
        1604,
    ),
    "mulan-flags/flags-test.arff": (
        "09f6136fae47dcc2f0f491efd6401a11072cbfb0bfbb2666c63b35bb06aeeb16",
        4218,
    ),
    "mulan-flags/flags-train.arff": (
        "1861cdab7f8baf1aef6fb6198f304465ddfd99b7f9a435337c604119522df3c5",
        7707,
    ),
    "mulan-flags/flags.xml": (
        "7c9ed21a91b716b91f811323e20ee5a260ea2da62a5edcfeb1b91ec855a48f17",
        304,
    ),
    "mulan-genbase/genbase-test.arff": (
        "0e988520bedab39aa3f23f08f646c769bcdb6f9119ee298fd92b37127b226a36",
        758739,
    ),
    "mulan-genbase/genbase-train.arff": (
        "37670db2c2b308a1c163d05501819526f1d65d659638ddfb76812d4ce384b5c6",
        1714007,
    ),
    "mulan-genbase/genbase.xml": (
        "198e8a1d7070e9603119e02e626cedc589db7577339b307b06f5192047b69eb9",
        992,
    ),
    "mulan-medical/medical-test.arff": (
        "6be472e75a6c0b0916187f343a398011b1b26f8f0ddc682c575312ad3532f6c4",
        99124,
    ),
    "mulan-medical/medical-train.arff": (
        "c764f45756ab1c553b8b4eaaf5605a5610a43bbbcf37492d0f1a12bf9c9e2244",
        69680,
    ),
    "mulan-medical/medical.xml": (
        "51fa9d5c09e48caff3f0a0c75db1c9aa85944f8e35451f3ad8bd56fc422286ce",
        1818,
    ),
    "mulan-scene/scene-test.arff": (
        "ea38d20296b3ff7e220f477a3b802a9bcb2d768881fe6ee163efbc97ea527a42",
        3090742,
    ),
    "mulan-scene/scene-train.arff": (
        "b53ba93bdf412de922e3960389bcee24744fa3e872ce610511fc1d750888b64d",
        3127968,
    ),
    "mulan-scene/scene.xml": (
        "55d8b247b949ad5c52e5a73d8c6775ec6e5469ce9682465b45b333b68ee4bcc5",
        285,
    ),
    "mulan-tmc2007-500/tmc2007-500-test.arff": (
        "b24f9c3f1eba77c9da0bbaff093ba41d331b7351be0167a8e1e3852c62e25e38",
        1054414,
    ),
    "mulan-tmc2007-500/tmc2007-500-train.arff": (
        "edfe7b7615c6f80e54c92a214437610d1ae36560c5cc6c4253b51c434d258273",
        3152791,
    ),
    "mulan-tmc2007-500/tmc2007-500.xml": (
        "cb6a67c8ae72fd9b47d89f77aa5b7f6cafb4ba9c20b1124c65a95a3f2caec38d",
        783,
    ),
    "mulan-yeast/yeast-test.arff": (
        "4aaac102bff9669a765bf0b378602e5cc8c3b181048282e2f003117b496d552a",
        918515,
    ),
    "mulan-yeast/yeast-train.arff": (
        "e759dc991ff54694a4ff9c4314f3be0d6fd2b1994a4b563f57e416394c6aebbd",
        1501117,
    ),
    "mulan-yeast/yeast.xml": (
        "c3056cc26444b5158b1588d1b73bec9c45429e10f0957ad085903423cb81f247",
        526,
    ),
    "rcv1subsets-top944-mat/rcv1subset1_top944.mat": (
        "b2ee886a52fc33753a246afd5025e5e1bc91be8bc95533798e9abf87974f8495",
        382413,
    ),
    "rcv1subsets-top944-mat/rcv1subset2_top944.mat": (
        "dcf47e73085ddc9ecd845c7574fe7762559db66dcdd6dd47a2864424ddda28b6",
        380044,
    ),
    "rcv1subsets-top944-mat/rcv1subset3_top944.mat": (
        "09acb20453492a62b34fdd41190551a00caf21851fb4d63aa1f81d58a301640a",
        380856,
    ),
    "rcv1subsets-top944-mat/rcv1subset4_top944.mat": (
        "983864d627187b91177958308aed1c5f27fa89aaa77c1389d1987b8418183053",
        377969,
    ),
    "rcv1subsets-top944-mat/rcv1subset5_top944.mat": (
        "d7353bc859b4e604f3d0645e9a73b6417f2becc38c35eaa483348e08001e9312",
        379687,
    ),
    "slashdot-mat/slashdot.mat": (
        "8467ff86fc090e4bc6247879a1c3d5486a6b9926cb10e8cc9b36b41eb2b7caa8",
        85391,
    ),
    "yahoo-arts-mat/arts.mat": (
        "18d584c069129d1f6ec3c7aebb7a8f02783b1c1316bc07efd14745c0f3cc45f3",
        1708335,
    ),
    "yahoo-recreation-mat/recreation.mat": (
        "984d8ebdca6f71c28506b275229a9b87ddff534e8274b195055ec5d6f53cd7fc",
        2190911,
    ),
    "yahoo-science-mat/science.mat": (
        "1096dc93f042604e7b4c037522a4c4423f10fc7dad6c072f98fdc929a48e3617",
        2938898,
    ),
}


def _pinned(folder: str, name: str) -> Member:
    sha, size = _PINNED[f"{folder}/{name}"]
    return Member(name, None, sha, size)


def _plain(
    base: str, mirror_dir: str, folder: str, upstream_dir: str, names: tuple[str, ...]
) -> tuple[RemoteFile, ...]:
    files = []
    for name in names:
        member = _pinned(folder, name)
        files.append(
            RemoteFile(
                f"{base}{upstream_dir}{name}",
                f"{mirror_dir}{upstream_dir}{name}",
                "plain",
                (member,),
                member.sha256,
                member.size,
            )
        )
    return tuple(files)


def _mulan(folder: str, upstream: str, *names: str) -> tuple[RemoteFile, ...]:
    return _plain(_MULAN, "mulan/", folder, f"{upstream}/", names)


def _mat(folder: str, *names: str) -> tuple[RemoteFile, ...]:
    return _plain(_MLD, "multi-label-dataset/", folder, "", names)


def _xc_large(drive_id: str, zip_name: str, inner: str, stem: str) -> tuple[RemoteFile, ...]:
    # checksums unknown: no copy of these zips could be seen (Google Drive re-uploads of the XC legacy zips by
    # napkinXC's author; the XC page's own ids stopped working)
    members = (
        Member(f"{stem}_train.txt", f"{inner}/{stem}_train.txt"),
        Member(f"{stem}_test.txt", f"{inner}/{stem}_test.txt"),
    )
    return (RemoteFile(_DRIVE + drive_id, f"xc/{zip_name}", "zip", members),)


_RCV1 = _mat("rcv1subsets-top944-mat", *(f"rcv1subset{k}_top944.mat" for k in range(1, 6)))

# registry name -> (origin key, files). Sets sharing a folder (rcv1-subset1..5) download the whole folder.
_DOWNLOADS: dict[str, tuple[str, tuple[RemoteFile, ...]]] = {
    "bibtex": (
        "xc",
        (
            RemoteFile(
                _BIBTEX_ZIP,
                "xc/Bibtex.zip",
                "zip",
                (
                    # pinned through the members (see the module docstring); the upstream zip itself had sha256
                    # 403d0e82fca1cbb3259cc00c553bebc807ed053967b2d9e8582a511bc3ae5757, 1149131 bytes
                    Member(
                        "Bibtex_data.txt",
                        "Bibtex/Bibtex_data.txt",
                        "9768a851d74823f125c5344d17eb2b1741f1615c926ba8b8387f5e76dfd53d24",
                        6889089,
                    ),
                    Member(
                        "bibtex_trSplit.txt",
                        "Bibtex/bibtex_trSplit.txt",
                        "99c4b1f878bb3a43f547c2e6996e6c13477a777463bb77e9dae13b3b96569927",
                        236753,
                    ),
                    Member(
                        "bibtex_tstSplit.txt",
                        "Bibtex/bibtex_tstSplit.txt",
                        "f51c5d01b0d2b5386ff0c1c26cdfcc8e92124f4e07022049468c672624df3651",
                        121927,
                    ),
                ),
            ),
        ),
    ),
    "eurlex-4k": (
        "xc",
        _xc_large("1xWW1UykQBTD2IorVn7V8XubJatQDScol", "Eurlex.zip", "Eurlex", "eurlex"),
    ),
    "wiki10-31k": (
        "xc",
        _xc_large("1uV-p682ggXQQTiKZyK5M6B0xJJk8_lJx", "Wiki10.zip", "Wiki10", "wiki10"),
    ),
    "amazoncat-13k": (
        "xc",
        _xc_large(
            "1WvBWF9hH5ZlFcpCRhp8wLVGwdeGZXKD2",
            "AmazonCat.zip",
            "AmazonCat",
            "amazonCat",
        ),
    ),
    "wiki-500k": (
        "xc",
        _xc_large(
            "1LkGdINF5coOfkm6J2xys3V1NMW7zz8U1",
            "WikipediaLarge-500K.zip",
            "WikipediaLarge-500K",
            "WikipediaLarge-500K",
        ),
    ),
    "amazon-670k": (
        "xc",
        _xc_large("1PV-wbKVv6Ng1K1XM1USqNxFhaQo2qfk6", "Amazon.zip", "Amazon", "amazon"),
    ),
    "scene": (
        "mulan",
        _mulan("mulan-scene", "scene", "scene-train.arff", "scene-test.arff", "scene.xml"),
    ),
    "emotions": (
        "mulan",
        _mulan(
            "mulan-emotions",
            "emotions",
            "emotions-train.arff",
            "emotions-test.arff",
            "emotions.xml",
        ),
    ),
    "birds": (
        "mulan",
        _mulan("mulan-birds", "birds", "birds-train.arff", "birds-test.arff", "birds.xml"),
    ),
    "cal500": ("mulan", _mulan("mulan-cal500", "cal500", "cal500.arff", "cal500.xml")),
    "yeast": (
        "mulan",
        _mulan("mulan-yeast", "yeast", "yeast-train.arff", "yeast-test.arff", "yeast.xml"),
    ),
    "enron": (
        "mulan",
        _mulan("mulan-enron", "enron", "enron-train.arff", "enron-test.arff", "enron.xml"),
    ),
    "medical": (
        "mulan",
        _mulan(
            "mulan-medical",
            "medical",
            "medical-train.arff",
            "medical-test.arff",
            "medical.xml",
        ),
    ),
    "genbase": (
        "mulan",
        _mulan(
            "mulan-genbase",
            "genbase",
            "genbase-train.arff",
            "genbase-test.arff",
            "genbase.xml",
        ),
    ),
    "corel5k": (
        "mulan",
        _mulan(
            "mulan-corel5k",
            "corel5k",
            "Corel5k-train-sparse.arff",
            "Corel5k-test-sparse.arff",
            "Corel5k.xml",
        ),
    ),
    "tmc2007-500": (
        "mulan",
        _mulan(
            "mulan-tmc2007-500",
            "tmc2007",
            "tmc2007-500-train.arff",
            "tmc2007-500-test.arff",
            "tmc2007-500.xml",
        ),
    ),
    "flags": (
        "mulan",
        _mulan("mulan-flags", "flags", "flags-train.arff", "flags-test.arff", "flags.xml"),
    ),
    "delicious": (
        "mulan",
        _mulan(
            "mulan-delicious",
            "delicious",
            "delicious-train.arff",
            "delicious-test.arff",
            "delicious.xml",
        ),
    ),
    "mulan-bibtex": (
        "mulan",
        _mulan(
            "mulan-bibtex",
            "bibtex",
            "bibtex-train.arff",
            "bibtex-test.arff",
            "bibtex.xml",
        ),
    ),
    "imdb": (
        "meka",
        (
            RemoteFile(
                _MEKA + "Imdb.arff.bz2",
                "meka/Imdb.arff.bz2",
                "bz2",
                (
                    Member(
                        "Imdb.arff",
                        None,
                        "ba63a84e89ef7d449d6f57eef9c9b097ef5182e6aca5373fd8ba0f5210334ae8",
                        15406138,
                    ),
                ),
                "edc1eb0acbcd3d5864eb61f1ef9c13bd21fc098fb68412434ca06c07a10e1122",
                2422401,
            ),
        ),
    ),
    **{f"rcv1-subset{k}": ("mld", _RCV1) for k in range(1, 6)},
    "yahoo-arts": ("mld", _mat("yahoo-arts-mat", "arts.mat")),
    "yahoo-recreation": ("mld", _mat("yahoo-recreation-mat", "recreation.mat")),
    "yahoo-science": ("mld", _mat("yahoo-science-mat", "science.mat")),
    "slashdot": ("mld", _mat("slashdot-mat", "slashdot.mat")),
    "languagelog": ("mld", _mat("languagelog-mat", "languagelog.mat")),
    "corel16k": ("mld", _mat("corel16k001-mat", "Corel16k001.mat")),
}

# sets with no public source registered: built from local raw files
_LOCAL_ORIGIN = {
    "debtags": "debian",
    "debian-deps": "debian",
    "wordnet-hypernyms": "wordnet",
}


def remote_files(name: str) -> tuple[RemoteFile, ...] | None:
    """The files to download for the registered set ``name``; None when it has no public source."""
    entry = _DOWNLOADS.get(name)
    return None if entry is None else entry[1]


def origin_of(name: str) -> Origin | None:
    """Where the registered set ``name`` comes from (None if unknown)."""
    key = _DOWNLOADS[name][0] if name in _DOWNLOADS else _LOCAL_ORIGIN.get(name)
    return None if key is None else ORIGINS[key]
