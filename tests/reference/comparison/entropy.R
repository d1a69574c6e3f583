# Reference weights of R ebal (Hainmueller's entropy balancing, CRAN 0.1-8, pure R; installed
# from github.com/cran/ebal with R CMD INSTALL) on MatchIt's lalonde data (lalonde.csv, written
# by matchit.R), for tests/test_comparison_matching.py.
#
# Run from this directory:  R_LIBS=/tmp/Rlib-ebal Rscript entropy.R
# Writes entropy_<case>.csv: id (comparison units only) and weight (summing to the number of
# treated units, ebal's normalisation).
suppressPackageStartupMessages(library(ebal))
d <- read.csv("lalonde.csv")
X <- cbind(age = d$age, educ = d$educ, hispan = as.numeric(d$race == "hispan"),
           white = as.numeric(d$race == "white"), married = d$married,
           nodegree = d$nodegree, re74 = d$re74, re75 = d$re75)
cases <- list(
  means = X,
  # means and variances: squares of the non-binary columns (written out so the column set is
  # explicit). Earnings are in thousands here only because ebal's Newton step on raw
  # squared earnings (~1e9) is numerically singular; rescaling a column does not change the
  # constraint set, so the weights are those for the raw columns.
  variances = cbind(X[, c("age", "educ", "hispan", "white", "married", "nodegree")],
                    re74 = d$re74 / 1000, re75 = d$re75 / 1000,
                    age2 = d$age^2, educ2 = d$educ^2, re742 = (d$re74 / 1000)^2,
                    re752 = (d$re75 / 1000)^2)
)
for (name in names(cases)) {
  eb <- ebalance(Treatment = d$treat, X = cases[[name]], max.iterations = 1000,
                 constraint.tolerance = 1e-7)
  stopifnot(eb$converged)
  cat(name, "max deviation of totals", eb$maxdiff, "\n")
  write.csv(data.frame(id = d$id[d$treat == 0], weight = eb$w), sprintf("entropy_%s.csv", name),
            row.names = FALSE)
}
writeLines(c(sprintf("R %s", getRversion()), sprintf("ebal %s", packageVersion("ebal"))),
           "versions_ebal.txt")
