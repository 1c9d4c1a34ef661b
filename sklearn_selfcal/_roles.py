"""The role table: every column the method reads, its canonical name, unit, range and spellings.

Every column the method reads has a *role* (sky position, parallax, a magnitude, log g, an
abundance, ...). :data:`ROLES` is one declarative table, in the spirit of scikit-learn's
``_parameter_constraints``: for each role the name the package uses inside (``canonical``), its
unit, its physical range, the values surveys write for "no measurement", the catalogue that provides
it and the spellings recognised without any configuration -- APOGEE allStar DR16 (``GAIA_*``) and
DR17 (``GAIAEDR3_*``), SDSS-V DR19/DR20 (astra's ``astraAllStarASPCAP``: lower-case names, [X/H]
abundances, the writer's fill values), the Gaia archive, 2MASS and AllWISE, VizieR. Adding a
survey's spelling is one entry in a tuple. :data:`DISTANCE_SOURCES` lists the distance catalogues
recognised in the same way (Bailer-Jones et al. 2021 as shipped in DR17, in SDSS-V, in the Gaia
archive and VizieR, astroNN, StarHorse), each with its unit and its uncertainty columns.

:mod:`sklearn_selfcal.columns` maps a catalogue's columns to these roles and re-exports the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._paper import ABUNDANCE_COLUMNS, ELEMENTS

__all__ = ["Role", "ROLES", "DistanceSource", "DISTANCE_SOURCES", "role_of", "get_role",
           "MAGNITUDE_SENTINELS", "ABUNDANCE_SCALES", "X_FE_ERRORS", "distance_pc_factor"]

#: Abundances an SDSS-V catalogue is calibrated in: ``"x_fe"`` (its [X/H] converted to the
#: [X/Fe] of the paper) or ``"x_h"`` (kept as [X/H]).
ABUNDANCE_SCALES = ("x_fe", "x_h")
#: Uncertainty of a converted [X/Fe]: ``"independent"``, ``sqrt(e_x_h**2 + e_fe_h**2)``; or
#: ``"dr17"``, ``e_x_h`` itself (APOGEE DR17 allStar ships ``X_FE_ERR == X_H_ERR``).
X_FE_ERRORS = ("independent", "dr17")

#: "No measurement" of a magnitude (2MASS, WISE and allStar write 99.999 or 99.99).
MAGNITUDE_SENTINELS = (99.999, 99.99, 999.99, 9999.99)


@dataclass(frozen=True)
class Role:
    """One role of the method's input table.

    Parameters
    ----------
    name : str
        Role key, e.g. ``"parallax"``; also the key of the ``[columns]`` config section.
    canonical : str
        Column name the package uses for it inside (the estimators' defaults).
    description : str
        What it is, with its unit.
    unit : str or None
        Unit (``"deg"``, ``"mas"``, ``"mas/yr"``, ``"km/s"``, ``"mag"``, ``"dex"``, ``"K"``).
    names : tuple of str
        Spellings recognised without configuration, in order of preference.
    valid : tuple of (float or None, float or None) or None
        Physical range ``[low, high]`` (inclusive; ``None`` = unbounded); values outside are NaN.
    provider : str
        Which catalogue provides it (used in messages about a missing role).
    kind : {"float", "int", "str", "bool"}
        Type of the values. Integer roles with a ``valid`` range (identifiers: ``(1, None)``) take
        values outside it (SDSS-V writes -1 for "none") as missing; an empty string is a missing
        text value.
    sentinels : tuple of float
        "No measurement" values besides
        :data:`sklearn_selfcal.cleaning.GENERIC_SENTINELS`.
    high_open : bool
        ``valid``'s upper bound is exclusive (e.g. right ascension in [0, 360)).
    allstar : tuple of str
        allStar's own spellings when they differ from the canonical name (DR17 first), renamed by
        ``load_allstar(..., gaia_names=True)``; recognised like ``names``.
    from_h : tuple of (str, str or None)
        [X/Fe] roles only: the [X/H] role it is converted from and the [Fe/H] role that conversion
        needs (``None``: a plain rename, e.g. the flag), for catalogues that give [X/H] (SDSS-V).
    """

    name: str
    canonical: str
    description: str
    unit: str | None
    names: tuple
    valid: tuple | None = None
    provider: str = ""
    kind: str = "float"
    sentinels: tuple = ()
    high_open: bool = False
    allstar: tuple = ()
    from_h: tuple = ()

    @property
    def spellings(self):
        """Every recognised spelling in order: canonical, allStar's, then the others."""
        return tuple(dict.fromkeys((self.canonical, *self.allstar, *self.names)))


def _magnitude(name, canonical, band, names, err_names, provider, allstar=(), allstar_err=()):
    """Roles of a magnitude and its uncertainty."""
    mag = Role(name, canonical, f"{band} magnitude (mag)", "mag", names, valid=(-5.0, 30.0),
               provider=provider, sentinels=MAGNITUDE_SENTINELS, allstar=allstar)
    err_canonical = f"{canonical}_ERR" if canonical.isupper() else f"{canonical}_error"
    err = Role(f"{name}_error", err_canonical, f"uncertainty of the {band} magnitude (mag)", "mag",
               err_names, valid=(0.0, 10.0), provider=provider, sentinels=MAGNITUDE_SENTINELS,
               allstar=allstar_err)
    return mag, err


#: SDSS-V (astra) spellings of the abundances that are not ``<x>_h``: the atmospheric [M/H] and
#: [alpha/M] of the stellar-parameter fit, relative to metallicity like DR17's ``M_H``/``ALPHA_M``.
_ASTRA_ABUNDANCE = {"M_H": "m_h_atm", "ALPHA_M": "alpha_m_atm"}


def _abundance(column, ratio_of=None):
    """Roles of an abundance column: value, uncertainty and flag (``MG_FE``, ``MG_H``, ...).

    ``ratio_of``: the [X/H] column an [X/Fe] role is converted from (``"MG_H"``).
    """
    element, ref = column.split("_")[0], column.split("_")[-1]
    pretty = {"FE_H": "[Fe/H]", "ALPHA_M": "[a/M]", "M_H": "[M/H]"}.get(
        column, f"[{element.capitalize()}/{ref.capitalize()}]")
    astra = _ASTRA_ABUNDANCE.get(column, column.lower())
    provider = "APOGEE allStar / SDSS-V astra (ASPCAP)"

    def via(suffix, by):
        return (f"{ratio_of}{suffix}", f"FE_H{suffix}" if by else None) if ratio_of else ()

    value = Role(column, column, f"{pretty} abundance (dex)", "dex",
                 tuple(dict.fromkeys((column.lower(), astra, pretty,
                                      pretty.replace("a/M", "alpha/M")))),
                 valid=(-5.0, 5.0), provider=provider, from_h=via("", True))
    error = Role(f"{column}_ERR", f"{column}_ERR", f"uncertainty of {pretty} (dex)", "dex",
                 (f"{column.lower()}_err", f"e_{astra}", f"e_{pretty}"), valid=(0.0, 5.0),
                 provider=provider, from_h=via("_ERR", True))
    flag = Role(f"{column}_FLAG", f"{column}_FLAG",
                f"ASPCAP flag of {pretty} (non-zero: unreliable)", None,
                (f"{column.lower()}_flag", f"{astra}_flags"), provider=provider, kind="int",
                from_h=via("_FLAG", False))
    return value, error, flag


def _gaia(name, canonical, description, unit, others, valid, allstar=None):
    """A Gaia role: the archive's name, VizieR's and, for the columns allStar ships (``allstar``
    None), allStar's DR17 and DR16 spellings ``GAIAEDR3_<NAME>`` and ``GAIA_<NAME>``."""
    if allstar is None:
        allstar = (f"GAIAEDR3_{canonical.upper()}", f"GAIA_{canonical.upper()}")
    return Role(name, canonical, description, unit, others, valid=valid, provider=_GAIA,
                allstar=allstar)


_GAIA = "Gaia (EDR3/DR3 archive, or the GAIAEDR3_* columns of APOGEE DR17 allStar)"
_ASPCAP = "APOGEE allStar (ASPCAP)"
_ASTRA = "SDSS-V astra summary files (astraAllStarASPCAP)"
_2MASS = "2MASS (J, H, K in APOGEE allStar)"
_ALLWISE = "AllWISE (w1mpro, w2mpro; allStar DR16/DR17 ship only W2 as WISE_4_5)"

#: The role table: every column the method reads, its canonical name, unit, physical range and
#: recognised spellings (allStar DR17, DR16, SDSS-V astra, Gaia archive, 2MASS/AllWISE, VizieR).
ROLES = (
    Role("star_id", "APOGEE_ID", "star identifier", None,
         ("apogee_id", "sdss4_apogee_id", "APOGEE", "2MASS_ID", "TMASS_ID", "2MASS", "ID", "id"),
         provider="APOGEE allStar", kind="str"),
    Role("sdss_id", "SDSS_ID", "SDSS-V source identifier (one star, possibly several rows)", None,
         ("sdss_id",), valid=(1, None), provider=_ASTRA, kind="int"),
    Role("catalogid", "CATALOGID", "SDSS-V targeting catalogue identifier", None, ("catalogid",),
         valid=(1, None), provider=_ASTRA, kind="int"),
    Role("source_id", "source_id", "Gaia source identifier", None,
         ("Source", "SOURCE_ID", "gaia_source_id", "gaia_dr3_source_id"), valid=(1, None),
         provider=_GAIA, kind="int", allstar=("GAIAEDR3_SOURCE_ID", "GAIA_SOURCE_ID")),
    Role("telescope", "TELESCOPE", "telescope (apo25m, lco25m, apo1m)", None, ("telescope", "Tel"),
         provider="APOGEE allStar", kind="str"),
    Role("release", "RELEASE", "SDSS release of the spectrum (sdss5, dr17)", None, ("release",),
         provider=_ASTRA, kind="str"),
    Role("ra", "ra", "right ascension, ICRS (deg)", "deg",
         ("RA_ICRS", "RAJ2000", "_RAJ2000", "RAdeg", "ra_icrs"), valid=(0.0, 360.0),
         high_open=True, provider="any (APOGEE allStar RA)", allstar=("RA",)),
    Role("dec", "dec", "declination, ICRS (deg)", "deg",
         ("DE_ICRS", "DEJ2000", "_DEJ2000", "DEdeg", "dec_icrs"), valid=(-90.0, 90.0),
         provider="any (APOGEE allStar DEC)", allstar=("DEC",)),
    _gaia("parallax", "parallax", "Gaia parallax (mas)", "mas", ("Plx", "plx"), (-1000.0, 1000.0)),
    _gaia("parallax_error", "parallax_error", "uncertainty of the Gaia parallax (mas)", "mas",
          ("e_Plx", "e_plx"), (0.0, 100.0)),
    _gaia("pmra", "pmra", "proper motion in right ascension, times cos(dec) (mas/yr)", "mas/yr",
          ("pmRA",), (-20000.0, 20000.0)),
    _gaia("pmra_error", "pmra_error", "uncertainty of pmra (mas/yr)", "mas/yr", ("e_pmRA",),
          (0.0, 1000.0)),
    _gaia("pmdec", "pmdec", "proper motion in declination (mas/yr)", "mas/yr", ("pmDE", "pmde"),
          (-20000.0, 20000.0)),
    _gaia("pmdec_error", "pmdec_error", "uncertainty of pmdec (mas/yr)", "mas/yr",
          ("e_pmDE", "e_pmde"), (0.0, 1000.0)),
    _gaia("pm_correlation", "pmra_pmdec_corr", "correlation of pmra and pmdec", None,
          ("pmRApmDEcor",), (-1.0, 1.0), allstar=()),
    Role("radial_velocity", "VHELIO_AVG", "heliocentric line-of-sight velocity from APOGEE (km/s)",
         "km/s", ("vhelio_avg", "v_rad", "HRV", "RV", "radial_velocity"), valid=(-1000.0, 1000.0),
         provider="APOGEE allStar (VHELIO_AVG)"),
    Role("radial_velocity_error", "VERR", "uncertainty of the line-of-sight velocity (km/s)",
         "km/s", ("verr", "e_v_rad", "e_HRV", "e_RV", "radial_velocity_error"),
         valid=(0.0, 1000.0),
         provider="APOGEE allStar (VERR)"),
    _gaia("gaia_radial_velocity", "radial_velocity", "Gaia line-of-sight velocity (km/s)", "km/s",
          ("gaia_v_rad",), (-1000.0, 1000.0),
          allstar=("GAIAEDR3_DR2_RADIAL_VELOCITY", "GAIA_RADIAL_VELOCITY")),
    _gaia("gaia_radial_velocity_error", "radial_velocity_error",
          "uncertainty of the Gaia line-of-sight velocity (km/s)", "km/s", ("gaia_e_v_rad",),
          (0.0, 1000.0),
          allstar=("GAIAEDR3_DR2_RADIAL_VELOCITY_ERROR", "GAIA_RADIAL_VELOCITY_ERROR")),
    _gaia("visibility_periods_used", "visibility_periods_used", "Gaia visibility periods used",
          None, ("Nper",), (0.0, 1000.0), allstar=()),
    _gaia("astrometric_chi2_al", "astrometric_chi2_al", "Gaia astrometric chi-square (AL)", None,
          ("chi2AL",), (0.0, None), allstar=()),
    _gaia("astrometric_n_good_obs_al", "astrometric_n_good_obs_al",
          "Gaia good along-scan observations", None, ("NgAL",), (0.0, None), allstar=()),
    _gaia("ruwe", "ruwe", "Gaia renormalised unit weight error", None, ("RUWE",), (0.0, None), allstar=()),
    *_magnitude("g_mag", "phot_g_mean_mag", "Gaia G", ("Gmag", "gmag", "g_mag"),
                ("e_Gmag", "phot_g_mean_mag_err"), _GAIA,
                allstar=("GAIAEDR3_PHOT_G_MEAN_MAG", "GAIA_PHOT_G_MEAN_MAG")),
    *_magnitude("bp_mag", "phot_bp_mean_mag", "Gaia BP", ("BPmag", "bpmag", "bp_mag"),
                ("e_BPmag", "phot_bp_mean_mag_err"), _GAIA,
                allstar=("GAIAEDR3_PHOT_BP_MEAN_MAG", "GAIA_PHOT_BP_MEAN_MAG")),
    *_magnitude("rp_mag", "phot_rp_mean_mag", "Gaia RP", ("RPmag", "rpmag", "rp_mag"),
                ("e_RPmag", "phot_rp_mean_mag_err"), _GAIA,
                allstar=("GAIAEDR3_PHOT_RP_MEAN_MAG", "GAIA_PHOT_RP_MEAN_MAG")),
    *_magnitude("j_mag", "J", "2MASS J", ("j_m", "Jmag", "jmag", "J_MAG"),
                ("j_msigcom", "e_Jmag", "j_cmsig", "J_MAG_ERR", "e_j_mag"), _2MASS),
    *_magnitude("h_mag", "H", "2MASS H", ("h_m", "Hmag", "hmag", "H_MAG"),
                ("h_msigcom", "e_Hmag", "h_cmsig", "H_MAG_ERR", "e_h_mag"), _2MASS),
    *_magnitude("k_mag", "K", "2MASS Ks", ("k_m", "Kmag", "Ksmag", "kmag", "K_MAG"),
                ("k_msigcom", "e_Kmag", "e_Ksmag", "k_cmsig", "K_MAG_ERR", "e_k_mag"), _2MASS),
    *_magnitude("w1_mag", "w1mpro", "WISE W1", ("W1mag", "W1MPRO", "w1mag", "w1_mag"),
                ("w1sigmpro", "e_W1mag", "W1MPRO_ERR", "w1mpro_err", "e_w1_mag"), _ALLWISE),
    *_magnitude("w2_mag", "w2mpro", "WISE W2", ("W2mag", "W2MPRO", "w2mag", "w2_mag"),
                ("w2sigmpro", "e_W2mag", "W2MPRO_ERR", "w2mpro_err", "e_w2_mag"), _ALLWISE,
                allstar=("WISE_4_5",), allstar_err=("WISE_4_5_ERR",)),
    *(Role(f"lsf_{i}", f"LSF_{i}", f"moment {i} of the APOGEE line-spread function", None,
           (f"lsf_{i}",), provider="the APOGEE LSF files (the paper computes the moments itself)")
      for i in range(1, 6)),
    Role("logg", "LOGG", "surface gravity log g (dex)", "dex", ("logg", "log_g", "LOGG_SPEC"),
         valid=(-1.0, 6.0), provider=_ASPCAP),
    Role("logg_error", "LOGG_ERR", "uncertainty of log g (dex)", "dex", ("logg_err", "e_logg"),
         valid=(0.0, 6.0), provider=_ASPCAP),
    Role("teff", "TEFF", "effective temperature (K)", "K", ("teff", "Teff", "TEFF_SPEC"),
         valid=(2500.0, 10000.0), provider=_ASPCAP),
    Role("teff_error", "TEFF_ERR", "uncertainty of Teff (K)", "K", ("teff_err", "e_Teff"),
         valid=(0.0, 5000.0), provider=_ASPCAP),
    Role("snr", "SNR", "signal-to-noise ratio of the combined spectrum", None, ("snr", "S/N"),
         valid=(0.0, None), provider="APOGEE allStar"),
    Role("aspcapflag", "ASPCAPFLAG", "ASPCAP bitmask (bit 23: STAR_BAD)", None, ("aspcapflag",),
         provider="APOGEE allStar", kind="int"),
    Role("starflag", "STARFLAG", "APOGEE star bitmask", None, ("starflag",),
         provider="APOGEE allStar", kind="int"),
    Role("extratarg", "EXTRATARG", "APOGEE targeting bitmask (bit 4: duplicate entry)", None,
         ("extratarg",), provider="APOGEE allStar", kind="int"),
    Role("flag_bad", "FLAG_BAD", "astra's bad-result flag (FERRE failure, grid edge, S/N < 20, "
         "std_v_rad > 1 km/s, ...)", None, ("flag_bad",), provider=_ASTRA, kind="bool"),
    Role("flag_warn", "FLAG_WARN", "astra's warning flag (result_flags > 0)", None, ("flag_warn",),
         provider=_ASTRA, kind="bool"),
    Role("result_flags", "RESULT_FLAGS", "astra's ASPCAP result bitmask", None, ("result_flags",),
         provider=_ASTRA, kind="int"),
    Role("bailer_jones_flags", "BAILER_JONES_FLAGS", "quality flags of the Bailer-Jones et al. "
         "(2021) distances (kept, not interpreted)", None, ("bailer_jones_flags",),
         provider=_ASTRA, kind="str"),
    *(role for column in ("M_H", *ABUNDANCE_COLUMNS)
      for role in _abundance(column, f"{column[:-3]}_H" if column.endswith("_FE") else None)),
    *(role for element in ELEMENTS for role in _abundance(f"{element}_H")),
    Role("spec_parallax", "spec_parallax", "spectro-photometric parallax (mas)", "mas", (),
         valid=(0.0, 1000.0), provider="this method, or the paper's catalogue"),
    Role("spec_parallax_err", "spec_parallax_err",
         "uncertainty of the spectro-photometric parallax (mas)", "mas", (), valid=(0.0, 1000.0),
         provider="this method, or the paper's catalogue"),
)

_BY_NAME = {role.name: role for role in ROLES}
_BY_CANONICAL = {role.canonical: role for role in ROLES}


def get_role(name):
    """The role named ``name`` (a key of the ``[columns]`` configuration).

    Parameters
    ----------
    name : str
        Role name, e.g. ``"parallax"`` or ``"w1_mag"``.

    Returns
    -------
    role : Role
        Its canonical name, unit, physical range and recognised spellings.

    Raises
    ------
    KeyError
        Naming the unknown role.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a role; roles are {sorted(_BY_NAME)}") from None


def role_of(column):
    """The role whose canonical name or recognised spelling is ``column`` (``None`` if none).

    Parameters
    ----------
    column : str
        A column name.

    Returns
    -------
    role : Role or None
        ``None`` if no role recognises the name.

    Examples
    --------
    >>> role_of("GAIAEDR3_PARALLAX").canonical
    'parallax'
    >>> role_of("LOGG").valid
    (-1.0, 6.0)
    """
    if column in _BY_CANONICAL:
        return _BY_CANONICAL[column]
    for role in ROLES:
        if column in role.spellings:
            return role
    return None


@dataclass(frozen=True)
class DistanceSource:
    """A catalogue of distances the method can use instead of spectro-photometric parallaxes.

    Parameters
    ----------
    column : str
        Distance column (the posterior median).
    unit : {"pc", "kpc"}
    label : str
        Where it comes from.
    error : str or None
        Symmetric 1-sigma uncertainty column (same unit).
    lo, hi : str or None
        16th and 84th percentile columns (same unit); ``(hi - lo) / 2`` is the uncertainty.
    """

    column: str
    unit: str
    label: str
    error: str | None = None
    lo: str | None = None
    hi: str | None = None


def _bailer_jones(kind, vizier):
    """Bailer-Jones et al. (2021) distances (pc) as APOGEE DR17, the Gaia archive and VizieR ship
    them: the median with its 16th and 84th percentiles."""
    label = f"Bailer-Jones et al. (2021) {'photo-geometric' if kind == 'photogeo' else 'geometric'}"
    upper = kind.upper()
    return (DistanceSource(f"GAIAEDR3_R_MED_{upper}", "pc", f"{label}, as shipped in APOGEE DR17",
                           lo=f"GAIAEDR3_R_LO_{upper}", hi=f"GAIAEDR3_R_HI_{upper}"),
            DistanceSource(f"r_med_{kind}", "pc", f"{label} (Gaia archive, SDSS-V)",
                           lo=f"r_lo_{kind}", hi=f"r_hi_{kind}"),
            DistanceSource(vizier, "pc", f"{label} (VizieR I/352)", lo=f"b_{vizier}",
                           hi=f"B_{vizier}"))


#: Distance catalogues recognised without configuration, in order of preference.
DISTANCE_SOURCES = (
    *_bailer_jones("photogeo", "rpgeo"),
    DistanceSource("dist", "pc", "astroNN (Leung & Bovy 2019)", error="dist_error"),
    DistanceSource("dist50", "kpc", "StarHorse (Queiroz et al.)", lo="dist16", hi="dist84"),
    *_bailer_jones("geo", "rgeo"),
    DistanceSource("GAIA_R_EST", "pc", "Bailer-Jones et al. (2018), as shipped in APOGEE DR16",
                   lo="GAIA_R_LO", hi="GAIA_R_HI"),
)
_PC_PER_UNIT = {"pc": 1.0, "kpc": 1000.0}


def distance_pc_factor(unit):
    """Parsecs per unit of a distance column (``"pc"`` -> 1, ``"kpc"`` -> 1000)."""
    try:
        return _PC_PER_UNIT[unit]
    except KeyError:
        raise ValueError(f"distance unit must be 'pc' or 'kpc', got {unit!r}") from None
