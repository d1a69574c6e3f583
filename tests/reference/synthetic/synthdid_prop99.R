# Reference values for cpdimpact.comparison (SyntheticDiD, SyntheticControl) on Prop 99.
#
# synthdid 0.0.9 (github.com/synth-inference/synthdid, commit 70c1ce3e), installed from source
# with `R CMD INSTALL -l <lib> synthdid`; R 4.2. Run from this folder:
#   R_LIBS=<lib> Rscript synthdid_prop99.R
# Writes synthdid_estimates.csv, synthdid_weights.csv and synthdid_placebos.csv.
# "every donor once" placebos follow synthdid's placebo_se (Algorithm 4) with the permutation
# fixed to (the other donors in order, donor j last) instead of a random one.
suppressMessages(library(synthdid))
panel <- read.csv("california_prop99.csv", sep = ";")
setup <- panel.matrices(panel, unit = "State", time = "Year", outcome = "PacksPerCapita",
                        treatment = "treated")
fits <- list(
  sdid = synthdid_estimate(setup$Y, setup$N0, setup$T0),
  sc = sc_estimate(setup$Y, setup$N0, setup$T0),
  did = did_estimate(setup$Y, setup$N0, setup$T0)
)
donors <- rownames(setup$Y)[1:setup$N0]
pre_years <- colnames(setup$Y)[1:setup$T0]

every_donor <- function(est) {
  s <- attr(est, "setup"); opts <- attr(est, "opts"); w <- attr(est, "weights")
  sapply(1:s$N0, function(j) {
    ind <- c(setdiff(1:s$N0, j), j)
    wb <- w
    wb$omega <- w$omega[ind[1:(s$N0 - 1)]]
    wb$omega <- if (sum(wb$omega) != 0) wb$omega / sum(wb$omega) else rep(1 / (s$N0 - 1), s$N0 - 1)
    c(do.call(synthdid_estimate, c(list(Y = s$Y[ind, ], N0 = s$N0 - 1, T0 = s$T0,
                                         X = s$X[ind, , , drop = FALSE], weights = wb), opts)))
  })
}

est_rows <- list(); w_rows <- list(); p_rows <- list()
for (m in names(fits)) {
  est <- fits[[m]]
  w <- attr(est, "weights")
  placebos <- every_donor(est)
  set.seed(12345)
  se200 <- sqrt(vcov(est, method = "placebo", replications = 200))
  est_rows[[m]] <- data.frame(method = m, estimate = c(est),
                              placebo_se_every_donor = sqrt(mean((placebos - mean(placebos))^2)),
                              placebo_se_random200_seed12345 = c(se200),
                              noise_level = sd(apply(setup$Y[1:setup$N0, 1:setup$T0], 1, diff)))
  w_rows[[m]] <- rbind(
    data.frame(method = m, kind = "omega", name = donors, weight = w$omega),
    data.frame(method = m, kind = "lambda", name = pre_years, weight = w$lambda))
  p_rows[[m]] <- data.frame(method = m, area = donors, estimate = placebos)
}
write.csv(do.call(rbind, est_rows), "synthdid_estimates.csv", row.names = FALSE)
write.csv(do.call(rbind, w_rows), "synthdid_weights.csv", row.names = FALSE)
write.csv(do.call(rbind, p_rows), "synthdid_placebos.csv", row.names = FALSE)
cat(sprintf("R %s, synthdid %s\n", getRversion(), packageVersion("synthdid")))
print(do.call(rbind, est_rows))
