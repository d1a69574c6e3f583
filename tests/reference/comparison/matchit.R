# Reference outputs of R MatchIt for cpdimpact.comparison (tests/test_comparison_matching.py).
#
# Run from this directory:  Rscript matchit.R
# Uses MatchIt's bundled `lalonde` data (Dehejia & Wahba 1999 subset of LaLonde 1986: 185
# treated NSW participants, 429 PSID comparison men), written to lalonde.csv with the row
# names as `id`, so the tests need neither R nor the network.
#
# For each case: weights_<case>.csv (id, treat, weight, subclass, distance),
# matches_<case>.csv for nearest-neighbour cases (treated id, rank, control id) and
# balance_<case>.csv (summary(m) rows "all" = before, "matched" = after, with
# standardize = TRUE: means, std. mean diff (treated-SD denominator, ATT), variance ratio,
# eCDF mean and max).
#
# MatchIt 4.5.1 (Debian's r-cran-matchit) has two bugs in propensity-score nearest-neighbour
# matching (integer abs() of the distances, fixed in 4.5.4; with replacement and ratio > 1 the
# same control is matched k times, fixed in 4.5.3): run this script with the patched
# build from build_patched_matchit.sh, R_LIBS=/tmp/Rlib-matchit Rscript matchit.R. The check
# below refuses to write outputs with the unpatched build.
suppressPackageStartupMessages(library(MatchIt))

# Bug check: treated unit at 0.5, controls at 0.1 and 0.55; the nearest is 0.55.
probe <- data.frame(treat = c(1, 0, 0), x = c(0.5, 0.1, 0.55))
m_probe <- matchit(treat ~ x, data = probe, distance = probe$x)
patched <- m_probe$match.matrix[1, 1] == "3"
if (!patched) stop("this MatchIt compares truncated (integer) distances; see build_patched_matchit.sh")
# Bug check 2: with replacement and ratio 2, the two matches must differ.
m_probe <- matchit(treat ~ x, data = probe, distance = probe$x, replace = TRUE, ratio = 2)
if (m_probe$match.matrix[1, 1] == m_probe$match.matrix[1, 2])
  stop("this MatchIt matches the same control twice with replace = TRUE; see build_patched_matchit.sh")
data("lalonde", package = "MatchIt")
lalonde$race <- as.character(lalonde$race)
out <- data.frame(id = rownames(lalonde), lalonde, row.names = NULL)
write.csv(out, "lalonde.csv", row.names = FALSE)

f <- treat ~ age + educ + race + married + nodegree + re74 + re75
cases <- list(
  # MatchIt's default: PS from a logit glm, distance = PS itself, m.order = "largest"
  nearest_ps = list(method = "nearest", distance = "glm"),
  # distance = logit of the PS (link "linear.logit"), caliper 0.2 SD of it (Austin 2011)
  nearest_logit_caliper = list(method = "nearest", distance = "glm", link = "linear.logit",
                               caliper = 0.2),
  # caliper 0.01 SD of the PS itself, which leaves several treated units unmatched
  nearest_ps_caliper = list(method = "nearest", distance = "glm", caliper = 0.01),
  nearest_replace = list(method = "nearest", distance = "glm", link = "linear.logit",
                         replace = TRUE),
  nearest_2to1 = list(method = "nearest", distance = "glm", link = "linear.logit", ratio = 2),
  nearest_3to1_replace = list(method = "nearest", distance = "glm", link = "linear.logit",
                              ratio = 3, replace = TRUE),
  mahalanobis = list(method = "nearest", distance = "mahalanobis"),
  cem = list(method = "cem",
             cutpoints = list(age = c(20, 25, 30, 40), educ = c(9, 12),
                              re74 = c(1, 5000, 15000), re75 = c(1, 5000, 15000),
                              married = 0, nodegree = 0)),
  cem_sturges = list(method = "cem")
)
mahal_formula <- treat ~ age + educ + married + nodegree + re74 + re75
cem_sturges_formula <- treat ~ age + educ + race + married + re74

for (name in names(cases)) {
  args <- cases[[name]]
  args$formula <- if (name == "mahalanobis") mahal_formula else
                  if (name == "cem_sturges") cem_sturges_formula else f
  args$data <- lalonde
  m <- do.call(matchit, args)
  w <- data.frame(id = rownames(lalonde), treat = lalonde$treat, weight = m$weights,
                  subclass = if (is.null(m$subclass)) NA else as.character(m$subclass),
                  distance = if (is.null(m$distance)) NA else m$distance)
  write.csv(w, sprintf("weights_%s.csv", name), row.names = FALSE, na = "")
  if (!is.null(m$match.matrix)) {
    mm <- m$match.matrix
    rows <- do.call(rbind, lapply(seq_len(ncol(mm)), function(j)
      data.frame(treated = rownames(mm), rank = j, control = mm[, j])))
    write.csv(rows, sprintf("matches_%s.csv", name), row.names = FALSE, na = "")
  }
  s <- summary(m, standardize = TRUE)
  tab <- function(x, sample) {
    data.frame(variable = rownames(x), sample = sample,
               treated_mean = x[, "Means Treated"], control_mean = x[, "Means Control"],
               std_mean_diff = x[, "Std. Mean Diff."], variance_ratio = x[, "Var. Ratio"],
               ecdf_mean = x[, "eCDF Mean"], ecdf_max = x[, "eCDF Max"], row.names = NULL)
  }
  b <- rbind(tab(s$sum.all, "before"), tab(s$sum.matched, "after"))
  write.csv(b, sprintf("balance_%s.csv", name), row.names = FALSE, na = "")
  if (!is.null(m$caliper)) cat(name, "caliper (distance units):", m$caliper, "\n")
}

writeLines(c(
  sprintf("R %s", getRversion()),
  sprintf("MatchIt %s from %s, with the fixes of MatchIt 4.5.3/4.5.4 to src/nn_matchC_vec.cpp applied (build_patched_matchit.sh)",
          packageVersion("MatchIt"), find.package("MatchIt")),
  sprintf("generated %s", format(Sys.time(), tz = "UTC", usetz = TRUE))
), "versions.txt")
