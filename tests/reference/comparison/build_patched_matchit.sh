#!/bin/sh
# Build the MatchIt used for the reference outputs: Debian's MatchIt 4.5.1 (r-cran-matchit)
# with two upstream fixes to src/nn_matchC_vec.cpp applied (nearest-neighbour matching on a
# propensity score; Mahalanobis and CEM code paths are untouched).
#
# 1. (fixed upstream in 4.5.4)#
# MatchIt 4.5.1-4.5.3 compare propensity-score distances in src/nn_matchC_vec.cpp with an
# unqualified abs(), which resolves to the C integer abs(): every distance is truncated
# towards zero before it is compared. On the probability scale every distance is then 0, so
# the treated unit always takes the nearest control *below* it, and the caliper never binds;
# on the logit scale only the integer parts are compared. MatchIt 4.5.4 (2023) replaced it by
# std::abs() (visible in the diff of src/nn_matchC_vec.cpp, 4.5.3 -> 4.5.4).
# 2. (fixed upstream in 4.5.3, NEWS: "Fixed a bug when using method = "nearest" with
# replace = TRUE and ratio greater than 1", #159) find_left/find_right skip controls already
# matched to this treated unit with check_in(d_ord[k], row), but `row` holds 1-based indices
# while d_ord[k] is 0-based, so with replacement and ratio k > 1 a treated unit takes the
# same control k times. Here: check_in(d_ord[k] + 1, row), as 4.5.3 achieves by storing
# 0-based indices until the end.
#
# This script applies both replacements to the 4.5.1 sources (github.com/cran/MatchIt, tag of
# version 4.5.1, commit 9ad26d84ce24020b1510e9d0070d56235d8a5d26) and installs them into
# $LIB. Then:  R_LIBS=$LIB Rscript matchit.R
set -e
LIB=${LIB:-/tmp/Rlib-matchit}
SRC=${SRC:-/tmp/matchit-build/MatchIt}   # an unpacked copy of the 4.5.1 sources
mkdir -p "$LIB"
sed -i 's/\([^:a-z_]\)abs(/\1std::abs(/g' "$SRC/src/nn_matchC_vec.cpp"
sed -i 's/check_in(d_ord\[k\], row)/check_in(d_ord[k] + 1, row)/' "$SRC/src/nn_matchC_vec.cpp"
grep -n "abs(\|check_in(d_ord" "$SRC/src/nn_matchC_vec.cpp"
R CMD INSTALL -l "$LIB" "$SRC"
