# Reference values for cpdimpact.planning from PowerUpR (Bulus, Dong, Kelcey & Spybrook).
#
# PowerUpR 1.1.0 (CRAN, 2021-10-24), pure R, installed from its CRAN source mirror
# (github.com/cran/PowerUpR) with `R CMD INSTALL -l /tmp/Rlib <dir>`; run with
#   R_LIBS=/tmp/Rlib Rscript tests/reference/planning/powerupr.R
# Writes powerupr.csv next to this script: for each case the MDES and its interval, the
# degrees of freedom, the standardised standard error, the power at `es`, PowerUpR's solved
# sample size (mrss.*, rounded as PowerUpR rounds) and the exact (continuous) sample size at
# which PowerUpR's own mdes.* equals the target, found with uniroot.
suppressPackageStartupMessages(library(PowerUpR))

quiet <- function(expr) {
  out <- NULL
  invisible(capture.output(out <- expr))
  out
}

# Each case: design, parameters in PowerUpR's names, es (for power), target (for mrss).
cases <- list(
  list(id = "ira_basic", design = "ira", parms = list(n = 200), es = 0.3, target = 0.25),
  list(id = "ira_cov_onetail", design = "ira",
       parms = list(n = 350, p = 0.4, g1 = 2, r21 = 0.5, two.tailed = FALSE), es = 0.2,
       target = 0.2),
  list(id = "cra2_readme", design = "cra2", parms = list(rho2 = 0.17, n = 15, J = 20),
       es = 0.4, target = 0.4),
  list(id = "cra2_city", design = "cra2",
       parms = list(rho2 = 0.15, n = 60, J = 80, g2 = 1, r21 = 0.5, r22 = 0.5), es = 0.2,
       target = 0.2),
  list(id = "cra2_onetail_alpha10", design = "cra2",
       parms = list(rho2 = 0.2, n = 25, J = 40, p = 0.3, r21 = 0.4, r22 = 0.6,
                    alpha = 0.10, two.tailed = FALSE, power = 0.9), es = 0.25, target = 0.25),
  list(id = "cra2_hubs", design = "cra2", parms = list(rho2 = 0.15, n = 500, J = 9, r22 = 0.5),
       es = 0.3, target = 0.3),
  list(id = "cra3_readme_a", design = "cra3",
       parms = list(rho2 = 0.06, rho3 = 0.18, g3 = 1, r21 = 0.55, r22 = 0.50, r23 = 0.45,
                    p = 0.40, n = 10, J = 2, K = 83), es = 0.25, target = 0.25),
  list(id = "cra3_readme_b", design = "cra3", parms = list(rho3 = 0.06, rho2 = 0.17, n = 15,
       J = 3, K = 60), es = 0.3, target = 0.3),
  list(id = "cra3_onetail", design = "cra3",
       parms = list(rho3 = 0.05, rho2 = 0.12, n = 25, J = 10, K = 30, r21 = 0.5, r22 = 0.3,
                    r23 = 0.2, g3 = 2, two.tailed = FALSE), es = 0.2, target = 0.15),
  list(id = "bira2_readme", design = "bira2", parms = list(rho2 = 0.35, omega2 = 0.10, n = 83,
       J = 10), es = 0.25, target = 0.25),
  list(id = "bira2_cov", design = "bira2",
       parms = list(rho2 = 0.2, omega2 = 0.3, n = 40, J = 30, r21 = 0.5, r2t2 = 0.2, g2 = 1,
                    p = 0.6), es = 0.15, target = 0.15),
  list(id = "bcra3f2_readme", design = "bcra3f2", parms = list(rho2 = 0.10, n = 20, J = 44,
       K = 5), es = 0.15, target = 0.15),
  list(id = "bcra3f2_cov_onetail", design = "bcra3f2",
       parms = list(rho2 = 0.15, n = 25, J = 12, K = 9, r21 = 0.5, r22 = 0.4, g2 = 2,
                    two.tailed = FALSE, alpha = 0.05, power = 0.8), es = 0.2, target = 0.2)
)

funs <- list(
  ira = list(mdes = mdes.ira, power = power.ira, mrss = mrss.ira, solve = "n"),
  cra2 = list(mdes = mdes.cra2, power = power.cra2, mrss = mrss.cra2, solve = "J"),
  cra3 = list(mdes = mdes.cra3, power = power.cra3, mrss = mrss.cra3, solve = "K"),
  bira2 = list(mdes = mdes.bira2, power = power.bira2, mrss = mrss.bira2, solve = "J"),
  bcra3f2 = list(mdes = mdes.bcra3f2, power = power.bcra3f2, mrss = mrss.bcra3f2, solve = "J")
)

columns <- c("n", "J", "K", "p", "rho2", "rho3", "omega2", "r21", "r22", "r23", "r2t2",
             "g1", "g2", "g3", "alpha", "power", "two.tailed")
rows <- list()
for (case in cases) {
  f <- funs[[case$design]]
  parms <- case$parms
  m <- quiet(do.call(f$mdes, parms))
  pw_parms <- parms
  pw_parms$power <- NULL
  pw <- quiet(do.call(f$power, c(pw_parms, list(es = case$es))))
  ss_parms <- parms
  ss_parms[[f$solve]] <- NULL
  ss <- quiet(do.call(f$mrss, c(ss_parms, list(es = case$target))))
  gap <- function(x) {
    q <- parms
    q[[f$solve]] <- x
    quiet(do.call(f$mdes, q))$mdes[1] - case$target
  }
  low <- switch(case$design, ira = 3 + ifelse(is.null(parms$g1), 0, parms$g1),
                cra2 = 3 + ifelse(is.null(parms$g2), 0, parms$g2),
                cra3 = 3 + ifelse(is.null(parms$g3), 0, parms$g3),
                bira2 = 2 + ifelse(is.null(parms$g2), 0, parms$g2),
                bcra3f2 = 2 + (1 + ifelse(is.null(parms$g2), 0, parms$g2)) / parms$K)
  exact <- uniroot(gap, c(low + 1e-6, 1e6), tol = 1e-10)$root
  row <- list(case = case$id, design = case$design)
  for (name in columns) {
    value <- parms[[name]]
    row[[gsub(".", "_", name, fixed = TRUE)]] <- if (is.null(value)) NA else value
  }
  row$mdes <- m$mdes[1]
  row$ci_lower <- m$mdes[2]
  row$ci_upper <- m$mdes[3]
  row$df <- m$df
  row$sse <- m$mdes[1] / m$ncp
  row$es <- case$es
  row$power_at_es <- pw$power
  row$solve_for <- f$solve
  row$target <- case$target
  row$mrss <- ss[[f$solve]]
  row$exact <- exact
  rows[[length(rows) + 1]] <- as.data.frame(row, stringsAsFactors = FALSE)
}
out <- do.call(rbind, rows)
here <- tryCatch(dirname(sys.frame(1)$ofile), error = function(e) NULL)
if (is.null(here)) {
  args <- commandArgs(trailingOnly = FALSE)
  here <- dirname(sub("--file=", "", args[grep("--file=", args)]))
}
write.csv(out, file.path(here, "powerupr.csv"), row.names = FALSE)
cat("wrote", nrow(out), "cases with PowerUpR", as.character(packageVersion("PowerUpR")),
    "on", R.version.string, "\n")
