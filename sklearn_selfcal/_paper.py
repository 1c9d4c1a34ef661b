"""Every convention of Eilers, Hogg, Rix et al. (2022) in one place.

Numbers and names that the paper fixes and that several modules use live here and nowhere else:
the Gaia parallax zero point (one sign, one name), the solar position and velocity, the log g
reference of the calibration and the giant cut, the [alpha/M] split of the two disks, the suffix of
calibrated abundances, the abundance list, the paper's regularisation strength, its training and
disk-sample bounds, its radial bins and the efficiency of the median. Importing this module is
cheap (numpy only) and it imports nothing else from the package.

Sign of the parallax zero point
-------------------------------
Lindegren et al. (2021) write a Gaia parallax as ``observed = true + zero_point``; the median zero
point of Gaia EDR3 (quasars) is about -0.017 mas, and the paper corrects every Gaia parallax by it.
Everywhere in this package a parameter named ``parallax_zero_point`` has this meaning and the
correction is ``observed - parallax_zero_point`` (:func:`correct_parallax`); a spectro-photometric
parallax is already a true-parallax estimate and has zero point 0.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

__all__ = [
    "GAIA_PARALLAX_ZERO_POINT",
    "PARALLAX_ZERO_POINT_RANGE_MAS",
    "SPEC_PARALLAX",
    "PARALLAX_ERROR",
    "correct_parallax",
    "zero_point_of",
    "parallax_to_distance",
    "R0_KPC",
    "Z_SUN_KPC",
    "V_SUN_KMS",
    "LOGG_REFERENCE",
    "LOGG_MAX",
    "ALPHA_SPLIT",
    "ALPHA_SPLIT_COLUMNS",
    "CALIBRATED_SUFFIX",
    "calibrated_name",
    "ELEMENTS",
    "ABUNDANCE_COLUMNS",
    "abundance_error_column",
    "MEDIAN_EFFICIENCY",
    "MAGNITUDE_COLUMNS",
    "LSF_COLUMNS",
    "PAPER_LAMBDA",
    "PAPER_N_TRAIN",
    "PAPER_ALPHA",
    "PAPER_TRAINING_BOUNDS",
    "DISK_Z_MAX_KPC",
    "DISK_WEDGE_ANGLE_DEG",
    "DISK_VZ_MAX_KMS",
    "PAPER_RADIUS_BINS",
    "BAR_HALF_LENGTH_KPC",
    "BAR_AXIS_RATIO",
    "BAR_ANGLE_DEG",
]

# --------------------------------------------------------------------------- astrometry (sec. 3.1)

#: Gaia EDR3 parallax zero point (mas) in Lindegren et al. (2021)'s sense, ``observed = true +
#: zero_point``; the paper's global correction. The default of every ``parallax_zero_point``.
GAIA_PARALLAX_ZERO_POINT = -0.017
#: Allowed zero points (mas), inclusive: every ``parallax_zero_point`` parameter is validated
#: against this range (Gaia's zero points are tens of micro-arcseconds; a value beyond 1 mas is a
#: unit mistake).
PARALLAX_ZERO_POINT_RANGE_MAS = (-1.0, 1.0)
#: The spectro-photometric parallax column (mas). It estimates the true parallax, so its zero
#: point is 0 whatever ``parallax_zero_point`` says (:func:`zero_point_of`).
SPEC_PARALLAX = "spec_parallax"
#: The one name of a per-star parallax uncertainty (mas, 1 sigma): the catalogue role, the metadata
#: routed to the parallax model, and (as ``spec_parallax_err``) the model's output.
PARALLAX_ERROR = "parallax_error"


def zero_point_of(column, parallax_zero_point=GAIA_PARALLAX_ZERO_POINT):
    """The zero point (mas) to subtract from the parallax column ``column``.

    The rule of the whole package: ``parallax_zero_point`` applies to observed (Gaia) parallaxes;
    the spectro-photometric parallax :data:`SPEC_PARALLAX` has zero point 0.

    Parameters
    ----------
    column : str or int
        Name (or position) of the parallax column read.
    parallax_zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point of observed parallaxes (mas).

    Returns
    -------
    zero_point : float
        Zero point (mas).

    Examples
    --------
    >>> zero_point_of("parallax"), zero_point_of("spec_parallax")
    (-0.017, 0.0)
    """
    return 0.0 if column == SPEC_PARALLAX else float(parallax_zero_point)


def parallax_to_distance(parallax, parallax_error=None, *, zero_point=GAIA_PARALLAX_ZERO_POINT,
                         min_over_error=None):
    """Heliocentric distance (kpc) and its uncertainty from a parallax (mas): the one inversion.

    ``d = 1 / (parallax - zero_point)`` and, to first order, ``d_err = parallax_error /
    (parallax - zero_point)**2``. Where the corrected parallax is not positive and finite (or,
    with ``min_over_error``, where ``(parallax - zero_point) / parallax_error`` is not above it)
    the distance and its error are NaN; no row is dropped.

    Parameters
    ----------
    parallax : array-like of shape (n_stars,)
        Parallaxes (mas).
    parallax_error : array-like of shape (n_stars,), optional
        Their uncertainties (mas).
    zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point (mas), subtracted (:func:`zero_point_of` gives the right one for a column).
    min_over_error : float, optional
        Keep only parallaxes measured better than this (e.g. 5, the paper's parallax/error > 5);
        needs ``parallax_error``.

    Returns
    -------
    distance : ndarray of shape (n_stars,)
        Distances (kpc).
    distance_error : ndarray of shape (n_stars,)
        Their uncertainties (kpc); only when ``parallax_error`` is given.

    Examples
    --------
    >>> d, e = parallax_to_distance([0.483, -0.1], [0.05, 0.05])
    >>> [round(float(v), 4) for v in d], [round(float(v), 4) for v in e]
    ([2.0, nan], [0.2, nan])
    """
    plx = correct_parallax(parallax, zero_point)
    good = np.isfinite(plx) & (plx > 0)
    if parallax_error is not None:
        err = np.asarray(parallax_error, dtype=float)
        if min_over_error is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                good &= plx / err > min_over_error
        good &= np.isfinite(err) & (err >= 0)
    elif min_over_error is not None:
        raise ValueError("min_over_error needs parallax_error")
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(good, 1.0 / plx, np.nan)
        if parallax_error is None:
            return distance
        return distance, np.where(good, err / plx**2, np.nan)


def correct_parallax(parallax, zero_point=GAIA_PARALLAX_ZERO_POINT):
    """Zero-point-corrected parallax, ``parallax - zero_point`` (mas).

    Parameters
    ----------
    parallax : float or array-like
        Observed parallax (mas).
    zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point (mas), ``observed = true + zero_point``; -0.017 mas for Gaia EDR3, 0 for a
        parallax that is already an estimate of the true one.

    Returns
    -------
    corrected : float or ndarray
        Parallax (mas).

    Examples
    --------
    >>> float(round(correct_parallax(1.0), 3))
    1.017
    """
    return np.subtract(parallax, zero_point, dtype=float)


#: Distance from the Sun to the Galactic centre (kpc; GRAVITY Collaboration 2019).
R0_KPC = 8.178
#: Height of the Sun above the Galactic mid-plane (kpc; Juric et al. 2008).
Z_SUN_KPC = 0.025
#: Galactocentric velocity of the Sun in astropy's frame (km/s); the paper quotes v_x = -11.1 in
#: its own sign convention.
V_SUN_KMS = (11.1, 245.8, 7.8)

# --------------------------------------------------------------------------- sample and calibration

#: Reference log g (dex) of the calibration: calibrated abundances are those of a star at this
#: surface gravity, just above the red clump (section 2).
LOGG_REFERENCE = 2.2
#: Giants more luminous than the red clump: ``LOGG <= LOGG_MAX`` (dex), the parent and disk samples.
LOGG_MAX = 2.2

#: [alpha/M] (dex) separating the low-alpha (below) from the high-alpha (at or above) disk.
ALPHA_SPLIT = 0.12
#: Columns used for the split, in order of preference: the calibrated [alpha/M], then the reported.
ALPHA_SPLIT_COLUMNS = ("ALPHA_M_NEW", "ALPHA_M")

#: Suffix of a self-calibrated abundance column (the paper's catalogue naming, ``FE_H_NEW``).
CALIBRATED_SUFFIX = "_NEW"


def calibrated_name(column):
    """Name of the calibrated version of an abundance column (``"MG_FE"`` -> ``"MG_FE_NEW"``).

    Parameters
    ----------
    column : str
        Abundance column.

    Returns
    -------
    name : str
    """
    return f"{column}{CALIBRATED_SUFFIX}"


#: The 19 [X/Fe] elements of the paper (with [Fe/H] its 20 elements), in DR16/DR17 column spelling.
ELEMENTS = ("C", "N", "O", "NA", "MG", "AL", "SI", "P", "S", "K", "CA", "TI", "V", "CR", "MN",
            "CO", "NI", "CU", "CE")
#: Abundance columns calibrated by default: FE_H, the 19 ``<X>_FE`` and ALPHA_M (dex).
ABUNDANCE_COLUMNS = ("FE_H",) + tuple(f"{x}_FE" for x in ELEMENTS) + ("ALPHA_M",)


def abundance_error_column(column):
    """APOGEE's uncertainty column of an abundance column (``"MG_FE"`` -> ``"MG_FE_ERR"``).

    Parameters
    ----------
    column : str

    Returns
    -------
    name : str
    """
    return f"{column}_ERR"


#: ``sqrt(pi / 2)``: the standard error of the median of N Gaussian draws is
#: ``MEDIAN_EFFICIENCY * sigma / sqrt(N)`` (the paper's ``1.253 sigma / sqrt(N)``).
MEDIAN_EFFICIENCY = float(np.sqrt(np.pi / 2.0))

# --------------------------------------------------------------------------- parallax model (eq. 7)

#: The model's magnitudes: Gaia G, BP, RP; 2MASS J, H, Ks; WISE W1, W2 (mag), under the names the
#: package uses (:data:`sklearn_selfcal.columns.ROLES` maps every catalogue's spelling to them).
MAGNITUDE_COLUMNS = ("phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag", "J", "H", "K",
                     "w1mpro", "w2mpro")
#: The first five moments of the APOGEE line-spread function (dimensionless).
LSF_COLUMNS = ("LSF_1", "LSF_2", "LSF_3", "LSF_4", "LSF_5")

#: The paper's regularisation strength (eq. 7, objective ``chi2 / 2 + lambda |P theta|_1``).
PAPER_LAMBDA = 160.0
#: Training stars per half in the paper: 79,529 parents split in two.
PAPER_N_TRAIN = 79529 / 2
#: ``lambda / N``: the paper's strength per training star (~4.02e-3), the package's ``alpha``.
PAPER_ALPHA = PAPER_LAMBDA / PAPER_N_TRAIN

# --------------------------------------------------------------------------- cuts (sections 3, 3.2)

#: The paper's training filter of the calibration (section 3.2): strict bounds ``low < value <
#: high`` (``None`` = unbounded): 0 < J_R < 400, -5000 < L_z < 1000, 0 < J_z < 100 (kpc km/s), and
#: x < 0 kpc (stars behind the Galactic centre are left out). Read-only.
PAPER_TRAINING_BOUNDS = MappingProxyType({
    "J_R": (0.0, 400.0),
    "L_z": (-5000.0, 1000.0),
    "J_z": (0.0, 100.0),
    "x": (None, 0.0),
})
#: Disk sample: ``|z| <= DISK_Z_MAX_KPC`` ...
DISK_Z_MAX_KPC = 1.0
#: ... or inside the wedge ``|z| <= R tan(DISK_WEDGE_ANGLE_DEG)`` that follows the flaring disk.
DISK_WEDGE_ANGLE_DEG = 6.0
#: Halo stars removed with ``|v_z| >= DISK_VZ_MAX_KMS`` (km/s).
DISK_VZ_MAX_KMS = 100.0

# --------------------------------------------------------------------------- maps and profiles

#: Bin edges (kpc) of the paper's radial profiles: 2-kpc bins centred on 1, 3, ..., 21 kpc.
PAPER_RADIUS_BINS = np.arange(0.0, 23.0, 2.0)
PAPER_RADIUS_BINS.setflags(write=False)
#: Half-length of the bar's major axis (kpc), paper Figure 5.
BAR_HALF_LENGTH_KPC = 5.0
#: Minor-to-major axis ratio of the bar outline, paper Figure 5.
BAR_AXIS_RATIO = 0.4
#: Angle (deg) between the bar's major axis and the Sun-Galactic centre line; the near end of the
#: bar is at positive Galactic longitude (``y > 0``).
BAR_ANGLE_DEG = 25.0
