r"""Covariate balance of treated and comparison schools, before and after weighting.

The statistics follow MatchIt's ``summary()`` for the average treatment effect on the treated
(ATT), so a table here can be checked line by line against R (Ho, Imai, King & Stuart 2011;
Stuart 2010):

* **standardised mean difference** :math:`(\bar x_T^w - \bar x_C^w)/s_T`, where the
  denominator :math:`s_T` is the standard deviation of the *treated* schools in the *unweighted*
  sample (for a 0/1 variable :math:`\sqrt{p_T(1-p_T)}`), the same before and after matching so
  that the two columns are comparable;
* **variance ratio** :math:`s^2_{T,w}/s^2_{C,w}` with the weighted variance
  :math:`\sum_i \tilde w_i (x_i-\bar x^w)^2 / (1-\sum_i \tilde w_i^2)`,
  :math:`\tilde w_i = w_i/\sum_j w_j` (missing for 0/1 variables);
* **eCDF mean and max**: the mean and largest absolute difference between the weighted
  empirical distribution functions of the two groups, evaluated at every distinct value of
  the variable (for a 0/1 variable, the absolute difference in proportions).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cpdimpact.errors import (
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    format_rows,
)

__all__ = ["BALANCE_COLUMNS", "balance_table", "plot_love", "covariate_matrix"]

#: Columns of :func:`balance_table`, in order.
BALANCE_COLUMNS = (
    "variable",
    "sample",
    "binary",
    "treated_mean",
    "control_mean",
    "std_mean_diff",
    "variance_ratio",
    "ecdf_mean",
    "ecdf_max",
    "n_treated",
    "n_control",
)

_TINY = np.sqrt(np.finfo(float).eps)


def require_column(
    frame: pd.DataFrame, column: str, role: str, option: str, *, table: str = "the schools table"
) -> None:
    """Refuse a table without the column an option names.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    column : str
        The column the option names.
    role : str
        What the column holds, e.g. ``"school id"``.
    option : str
        The option that named the column, e.g. ``"unit"``.
    table : str, default "the schools table"
        The table in the user's words.

    Raises
    ------
    cpdimpact.errors.MissingColumnError
        Naming the column, its role, the table's first 30 columns and the option to pass.
    """
    if column not in frame.columns:
        shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:30])
        raise MissingColumnError(
            f"column {column!r} (the {role}) is not in {table}, which has columns "
            f"[{shown}]. Pass {option}='<name>' to name the right column."
        )


def _complete_column(frame: pd.DataFrame, column: str, role: str, option: str, fix: str):
    """``frame[column]`` after checking that it exists (:func:`require_column`) and has a value
    for every school; else an error naming the rows, ending with ``fix``."""
    require_column(frame, column, role, option)
    series = frame[column]
    missing = series.isna().to_numpy()
    if missing.any():
        raise InvalidValueError(
            f"{role} {column!r} is missing for {int(missing.sum())} of {len(series)} schools, "
            f"at {format_rows(frame.index[missing])}. {fix}"
        )
    return series


def treatment_indicator(frame: pd.DataFrame, treatment: str) -> np.ndarray:
    """The treatment column as a boolean array; 0/1 or True/False, nothing missing."""
    series = _complete_column(
        frame,
        treatment,
        "treatment indicator",
        "treatment",
        "Every school must be marked treated (1) or comparison (0).",
    )
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    bad = ~series.isin([0, 1]).to_numpy()
    if bad.any():
        raise InvalidValueError(
            f"column {treatment!r} (the treatment indicator) must hold 0/1 or True/False, but "
            f"has {series[bad].iloc[0]!r} at {format_rows(frame.index[bad])}. Map it to 0/1 "
            "first."
        )
    return series.to_numpy(dtype=float) == 1


def _is_categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def covariate_matrix(
    frame: pd.DataFrame, covariates: Sequence[str], *, drop_first: bool
) -> tuple[np.ndarray, list[str], list[str]]:
    """Numeric design of the covariates: categorical columns become one 0/1 column per level.

    Returns ``(X, names, sources)``: the float matrix, one name per column (``"phase=primary"``
    for a level) and the input column each came from. With ``drop_first`` the first level (in
    sorted order) of each categorical column is left out, as a model's reference level.
    Missing or infinite values raise :class:`~cpdimpact.errors.InvalidValueError` naming the
    column and the first rows.
    """
    if isinstance(covariates, str):
        covariates = [covariates]
    covariates = list(covariates)
    if not covariates:
        raise InvalidArgumentError("covariates must name at least one column")
    if len(set(covariates)) != len(covariates):
        raise InvalidArgumentError(f"covariates are repeated: {covariates}")
    columns, names, sources = [], [], []
    for column in covariates:
        series = _complete_column(
            frame,
            column,
            "covariate",
            "covariates",
            "Matching and weighting need every covariate for every school: impute it, drop "
            "those schools upstream (and report it), or leave the covariate out.",
        )
        if _is_categorical(series):
            levels = sorted(pd.unique(series), key=str)
            for level in levels[1:] if drop_first else levels:
                columns.append((series == level).to_numpy(dtype=float))
                names.append(f"{column}={level}")
                sources.append(column)
            continue
        values = series.to_numpy(dtype=float)
        if np.isinf(values).any():
            raise InvalidValueError(
                f"covariate {column!r} has infinite values at "
                f"{format_rows(frame.index[np.isinf(values)])}; replace or drop them upstream."
            )
        columns.append(values)
        names.append(str(column))
        sources.append(column)
    return np.column_stack(columns), names, sources


def _weights_array(frame: pd.DataFrame, weights, unit: str | None) -> np.ndarray | None:
    if weights is None:
        return None
    if hasattr(weights, "weights") and hasattr(weights, "unit"):  # a ComparisonWeights
        unit, weights = unit or weights.unit, weights.weights
    if isinstance(weights, str):
        require_column(frame, weights, "weights", "weights")
        values = frame[weights].to_numpy(dtype=float)
    elif isinstance(weights, pd.Series) and unit is not None:
        require_column(frame, unit, "school id", "unit")
        values = frame[unit].map(weights).to_numpy(dtype=float)
    elif isinstance(weights, pd.Series):
        values = weights.reindex(frame.index).to_numpy(dtype=float)
    else:
        values = np.asarray(weights, dtype=float)
        if values.shape != (len(frame),):
            raise InvalidArgumentError(
                f"weights has shape {values.shape}; pass one weight per school ({len(frame)})"
            )
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise InvalidValueError(
            f"weights are missing, infinite or negative for {int(bad.sum())} schools, at "
            f"{format_rows(frame.index[bad])}; every school of the table needs a weight >= 0."
        )
    return values


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(x * w) / np.sum(w))


def _wvar(x: np.ndarray, w: np.ndarray, binary: bool) -> float:
    """MatchIt's weighted variance: p(1-p) for 0/1, else the unbiased 'reliability' form."""
    w = w / np.sum(w)
    m = float(np.sum(w * x))
    if binary:
        return m * (1 - m)
    denom = 1 - float(np.sum(w**2))
    return float(np.sum(w * (x - m) ** 2) / denom) if denom > 0 else float("nan")


def _ecdf(x, treated, w, order, last_of_value) -> tuple[float, float]:
    """Mean and max |F_T - F_C| over the distinct values of ``x`` (weighted eCDFs);
    ``order`` sorts ``x`` and ``last_of_value`` marks the last sorted position of each value."""
    signed = np.where(treated, w / np.sum(w[treated]), -w / np.sum(w[~treated]))
    gaps = np.abs(np.cumsum(signed[order]))
    at = gaps[last_of_value]
    return float(at.mean()), float(at.max())


def _pooled_sd(x: np.ndarray, treated: np.ndarray, binary: bool) -> float:
    n = len(x)
    if binary:
        total = 0.0
        for group in (treated, ~treated):
            s = x[group].sum()
            total += s * (1 - s / group.sum()) / n
        return float(np.sqrt(total))
    centred = x.copy()
    for group in (treated, ~treated):
        centred[group] -= x[group].mean()
    return float(np.sqrt(np.sum(centred**2) / (n - 2)))


def _rows(x, name, treated, weights, sample, binary, order, last_of_value):
    base = np.ones(len(x))
    w = base if weights is None else weights
    t, c = treated & (w > 0), ~treated & (w > 0)
    if not t.any() or not c.any():
        raise InvalidValueError(
            f"the {sample} sample has no {'treated' if not t.any() else 'comparison'} school "
            "with a positive weight; balance cannot be measured."
        )
    mt, mc = _wmean(x[t], w[t]), _wmean(x[c], w[c])
    # Denominator: the treated group's SD in the unweighted sample (MatchIt's ATT default).
    sd = np.sqrt(_wvar(x[treated], base[treated], binary))
    if not (np.isfinite(sd) and sd >= _TINY):
        sd = _pooled_sd(x, treated, binary)
    diff = mt - mc
    smd = diff / sd if sd > 0 else (0.0 if diff == 0 else float("nan"))
    if binary:
        ratio, emean, emax = float("nan"), abs(diff), abs(diff)
    else:
        vc = _wvar(x[c], w[c], False)
        ratio = _wvar(x[t], w[t], False) / vc if vc > 0 else float("nan")
        emean, emax = (
            _ecdf(x, treated, w, order, last_of_value) if order is not None else (np.nan, np.nan)
        )
    return {
        "variable": name,
        "sample": sample,
        "binary": binary,
        "treated_mean": mt,
        "control_mean": mc,
        "std_mean_diff": float(smd),
        "variance_ratio": float(ratio),
        "ecdf_mean": emean,
        "ecdf_max": emax,
        "n_treated": int(t.sum()),
        "n_control": int(c.sum()),
    }


def balance_table(
    schools: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    weights=None,
    unit: str | None = None,
    ecdf: bool = True,
) -> pd.DataFrame:
    r"""Balance of treated and comparison schools on each covariate, before and after weighting.

    Parameters
    ----------
    schools
        One row per school. Not modified.
    treatment
        Column marking treated schools (0/1 or True/False).
    covariates
        Columns to compare. A categorical (text) column gives one 0/1 row per level, named
        ``"column=level"``.
    weights
        Optional: a column name, one weight per row (array-like), a Series indexed by school id
        (with ``unit``), or a :class:`~cpdimpact.comparison.ComparisonWeights` (whose ``unit``
        is used). Schools with weight 0 are left out of the "after" rows. Without weights only
        the "before" rows are returned.
    unit
        Column of school ids, used to look up a Series of weights.
    ecdf
        Compute the eCDF statistics (one sort per covariate); ``False`` leaves them missing
        for non-binary covariates.

    Returns
    -------
    pandas.DataFrame
        Long table with columns ``variable, sample ("before"/"after"), binary, treated_mean,
        control_mean, std_mean_diff, variance_ratio, ecdf_mean, ecdf_max, n_treated,
        n_control``.

    Notes
    -----
    For the ATT, with :math:`w_i` the weights (all 1 before matching) the standardised mean
    difference is

    .. math:: d = \frac{\sum_{T} w_i x_i / \sum_T w_i - \sum_C w_i x_i / \sum_C w_i}{s_T},

    with :math:`s_T` the standard deviation of the treated schools in the unweighted sample
    (:math:`\sqrt{p_T(1-p_T)}` for a 0/1 variable), as MatchIt's ``summary()`` (Stuart 2010,
    *Statistical Science* 25(1)); a constant treated group falls back to the pooled SD. Austin
    (2009, *Stat. Med.* 28) suggests :math:`|d| < 0.1` as a working threshold. Variance ratios
    near 1 (within about 0.5-2) indicate similar spread (Rubin 2001). The eCDF statistics are
    the mean and maximum absolute difference between the weighted empirical distribution
    functions over the distinct values of the variable.

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact.comparison import balance_table
    >>> schools = pd.DataFrame({"treated": [1, 1, 0, 0, 0], "size": [200, 300, 250, 400, 150]})
    >>> balance_table(schools, treatment="treated", covariates=["size"])[
    ...     ["variable", "std_mean_diff"]]
      variable  std_mean_diff
    0     size      -0.235702
    """
    treated = treatment_indicator(schools, treatment)
    if treated.all() or not treated.any():
        raise InvalidValueError(
            f"column {treatment!r} marks {'every' if treated.all() else 'no'} school as "
            "treated; balance needs both treated and comparison schools."
        )
    X, names, _ = covariate_matrix(schools, covariates, drop_first=False)
    w = _weights_array(schools, weights, unit)
    before, after = [], []
    for j in range(X.shape[1]):
        x = X[:, j]
        binary = bool(np.all((x == 0) | (x == 1)))
        order = last = None
        if not binary and ecdf:
            order = np.argsort(x, kind="stable")
            xs = x[order]
            last = np.append(xs[1:] != xs[:-1], True)
        args = (binary, order, last)
        before.append(_rows(x, names[j], treated, None, "before", *args))
        if w is not None:
            after.append(_rows(x, names[j], treated, w, "after", *args))
    return pd.DataFrame(before + after, columns=list(BALANCE_COLUMNS))


def plot_love(
    balance,
    *,
    ax=None,
    statistic: str = "std_mean_diff",
    absolute: bool = True,
    threshold: float | None = 0.1,
):
    """Love plot: each covariate's balance statistic before and after weighting.

    Parameters
    ----------
    balance
        A table from :func:`balance_table`, or anything with a ``balance`` attribute holding
        one (a :class:`~cpdimpact.comparison.ComparisonWeights`).
    ax
        Matplotlib Axes to draw on; a new figure when ``None``.
    statistic
        Column to plot: ``"std_mean_diff"`` (default), ``"variance_ratio"``, ``"ecdf_mean"``
        or ``"ecdf_max"``.
    absolute
        Plot absolute values (the usual convention for standardised differences).
    threshold
        Draw a dashed reference line at this value (and its negative when not absolute);
        ``None`` for none. For variance ratios a line at 1 is drawn instead.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    table = getattr(balance, "balance", balance)
    if statistic not in ("std_mean_diff", "variance_ratio", "ecdf_mean", "ecdf_max"):
        raise InvalidArgumentError(
            f"statistic must be a balance statistic column, got {statistic!r}"
        )
    if ax is None:
        height = 1.2 + 0.3 * table["variable"].nunique()
        _, ax = plt.subplots(figsize=(6, height))
    variables = list(dict.fromkeys(table["variable"]))
    position = {v: i for i, v in enumerate(reversed(variables))}
    styles = {"before": ("o", "white", "before"), "after": ("o", "C0", "after")}
    for sample, (marker, face, label) in styles.items():
        part = table[table["sample"] == sample]
        if part.empty:
            continue
        values = part[statistic].to_numpy(dtype=float)
        if absolute and statistic == "std_mean_diff":
            values = np.abs(values)
        ax.scatter(
            values,
            [position[v] for v in part["variable"]],
            marker=marker,
            facecolors=face,
            edgecolors="C0",
            label=label,
            zorder=3,
        )
    if statistic == "variance_ratio":
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    elif threshold is not None:
        ax.axvline(threshold, color="grey", linestyle="--", linewidth=1)
        if not absolute:
            ax.axvline(-threshold, color="grey", linestyle="--", linewidth=1)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(variables)))
    ax.set_yticklabels(list(reversed(variables)))
    label = {
        "std_mean_diff": "standardised mean difference",
        "variance_ratio": "variance ratio (treated / comparison)",
        "ecdf_mean": "eCDF mean difference",
        "ecdf_max": "eCDF max difference",
    }[statistic]
    ax.set_xlabel(("absolute " if absolute and statistic == "std_mean_diff" else "") + label)
    ax.legend(loc="best")
    return ax
