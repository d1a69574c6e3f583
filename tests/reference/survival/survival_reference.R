# Reference values of R survival for tests/test_survival_parity.py.
# Run from this folder: Rscript survival_reference.R  (reads spells.csv, writes r_*.csv)
suppressMessages(library(survival))
d <- read.csv("spells.csv")
d$school_f <- factor(d$school)

curve <- function(fit, variant) {
  strata <- rep(names(fit$strata), fit$strata)
  data.frame(variant = variant, arm = ifelse(strata == "treated=1", "treated", "comparison"),
             time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event,
             n_censor = fit$n.censor, survival = fit$surv, std_error = fit$std.err,
             ci_lower = fit$lower, ci_upper = fit$upper)
}

km <- list(
  plain = survfit(Surv(years, left) ~ treated, data = d),
  loglog = survfit(Surv(years, left) ~ treated, data = d, conf.type = "log-log"),
  plain_ci = survfit(Surv(years, left) ~ treated, data = d, conf.type = "plain"),
  cluster = survfit(Surv(years, left) ~ treated, data = d, cluster = school),
  weights = survfit(Surv(years, left) ~ treated, data = d, weights = weight),
  weights_cluster = survfit(Surv(years, left) ~ treated, data = d, weights = weight,
                            cluster = school),
  counts = survfit(Surv(years, left) ~ treated, data = d, weights = count),
  exact_cluster = survfit(Surv(years_exact, left) ~ treated, data = d, cluster = school,
                          conf.type = "log-log")
)
write.csv(do.call(rbind, Map(curve, km, names(km))), "r_km_curves.csv", row.names = FALSE)

# difference in the share still in post at 1, 2, 3 years (treated - comparison), its jackknife
# standard error from survfit's influence (clusters shared by the arms kept together)
differences <- function(fit, variant) {
  s <- summary(fit, times = c(1, 2, 3), extend = TRUE)
  s1 <- s$surv[s$strata == "treated=1"]; s0 <- s$surv[s$strata == "treated=0"]
  infl <- fit$influence.surv; names(infl) <- names(fit$strata)
  ids <- union(rownames(infl[[1]]), rownames(infl[[2]]))
  se <- sapply(c(1, 2, 3), function(h) {
    at <- function(st) {
      tt <- fit[st]$time; k <- max(which(tt <= h))
      v <- setNames(numeric(length(ids)), ids); m <- infl[[st]]
      v[rownames(m)] <- m[, k]; v
    }
    sqrt(sum((at("treated=1") - at("treated=0"))^2))
  })
  data.frame(variant = variant, horizon = c(1, 2, 3), estimate = s1 - s0, std_error = se)
}
diffs <- rbind(
  differences(survfit(Surv(years, left) ~ treated, data = d, cluster = school,
                      influence = TRUE), "cluster"),
  differences(survfit(Surv(years, left) ~ treated, data = d, cluster = school,
                      weights = weight, influence = TRUE), "weights_cluster"),
  differences(survfit(Surv(years_exact, left) ~ treated, data = d, cluster = school,
                      influence = TRUE), "exact_cluster")
)
write.csv(diffs, "r_km_differences.csv", row.names = FALSE)

cox <- function(fit, variant, ties) {
  naive <- if (is.null(fit$naive.var)) fit$var else fit$naive.var
  terms <- names(coef(fit))
  data.frame(variant = variant, ties = ties, term = terms, estimate = unname(coef(fit)),
             std_error = sqrt(diag(fit$var)), model_std_error = sqrt(diag(naive)),
             cov_treated = fit$var[, 1], loglik = fit$loglik[2], loglik_null = fit$loglik[1])
}
rows <- list()
for (ties in c("efron", "breslow")) {
  fits <- list(
    plain = coxph(Surv(years, left) ~ treated, data = d, ties = ties),
    cluster = coxph(Surv(years, left) ~ treated + experience + senior + cluster(school),
                    data = d, ties = ties),
    weights = coxph(Surv(years, left) ~ treated + experience + senior, data = d,
                    weights = weight, ties = ties),
    weights_cluster = coxph(Surv(years, left) ~ treated + experience + senior +
                              cluster(school), data = d, weights = weight, ties = ties),
    counts = coxph(Surv(years, left) ~ treated + experience, data = d, weights = count,
                   ties = ties),
    exact_cluster = coxph(Surv(years_exact, left) ~ treated + experience + cluster(school),
                          data = d, ties = ties)
  )
  for (v in names(fits)) rows[[length(rows) + 1]] <- cox(fits[[v]], v, ties)
}
write.csv(do.call(rbind, rows), "r_cox.csv", row.names = FALSE)
writeLines(c(R.version.string, paste("survival", packageVersion("survival"))),
           "r_versions.txt")
