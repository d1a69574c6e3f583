# Reference values for tests/test_sun_abraham.py from lm() with dummies and sandwich::vcovCL.
#
#   Rscript tests/reference/sun_abraham/make_reference.R
#
# Independent of cpdimpact's code. For each case it
#   1. builds the estimation sample as documented in SunAbraham (units first treated after the
#      last period are never treated; always-treated units dropped; with last_treated the
#      never-treated units and every period from the last cohort's start are dropped);
#   2. fits y ~ cohort x event-time dummies (every event time but the reference, per treated
#      cohort; `window` bins the ends) + covariates + factor(unit) + factor(year) by lm(),
#      weighted when the case has weights;
#   3. takes sandwich::vcovCL(type = "HC0", cadjust = FALSE) times G/(G-1) * (N-1)/(N-K), K =
#      all lm coefficients minus the U-1 unit dummies (units are nested in the clusters here);
#   4. estimates the cohort shares as eventstudyinteract does, by regressing each cell
#      indicator on the indicator of the aggregate's cells (no constant, weighted) among the
#      treated rows, and clusters those regressions' scores (sandwich::estfun) to get the
#      share part of the variance, delta' V_w delta with factor G/(G-1);
#   5. reports the IW estimates by event time, the ATT over post cells (treated-observation
#      weights), the equal-weight mean over post event times, with fixed-share and full
#      standard errors, and the pre-trend Wald F on the full covariance.
# Writes reference.json and sessionInfo.txt next to this script.

suppressPackageStartupMessages({
  library(sandwich)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."

cases <- list(
  list(name = "mpdta", file = "../mpdta/mpdta.csv", outcome = "lemp", unit = "countyreal",
       time = "year", first = "first_treat", cluster = "countyreal", covariates = character(0),
       weights = NULL, control = "never_treated", reference = -1, window = NULL),
  list(name = "staggered_x_area", file = "staggered.csv", outcome = "outcome", unit = "unit",
       time = "year", first = "first_treated", cluster = "area", covariates = c("x"),
       weights = NULL, control = "never_treated", reference = -1, window = NULL),
  list(name = "staggered_window", file = "staggered.csv", outcome = "outcome", unit = "unit",
       time = "year", first = "first_treated", cluster = "unit", covariates = character(0),
       weights = NULL, control = "never_treated", reference = -1, window = c(-3, 2)),
  list(name = "pupils_prior", file = "pupils.csv", outcome = "outcome", unit = "school",
       time = "year", first = "first_treated", cluster = "school", covariates = c("prior"),
       weights = NULL, control = "never_treated", reference = -1, window = NULL),
  list(name = "rollout_weighted_last", file = "rollout.csv", outcome = "outcome",
       unit = "school", time = "year", first = "first_treated", cluster = "school",
       covariates = character(0), weights = "n_pupils", control = "last_treated",
       reference = -2, window = NULL)
)

prepare_sample <- function(d, cs) {
  g <- d[[cs$first]]
  g[is.na(g)] <- 0
  tt <- d[[cs$time]]
  g[g > max(tt)] <- 0
  d$.g <- g
  d <- d[!(d$.g != 0 & d$.g <= min(tt)), ]
  control <- 0
  if (cs$control == "last_treated") {
    control <- max(d$.g)
    d <- d[d$.g != 0 & d[[cs$time]] < control, ]
  }
  d$.treated <- d$.g != 0 & d$.g != control
  e <- ifelse(d$.treated, d[[cs$time]] - d$.g, NA)
  if (!is.null(cs$window)) e <- pmin(pmax(e, cs$window[1]), cs$window[2])
  d$.e <- e
  d
}

run_case <- function(cs) {
  d <- prepare_sample(read.csv(file.path(here, cs$file)), cs)
  n <- nrow(d)
  incell <- d$.treated & d$.e != cs$reference
  cells <- unique(data.frame(g = d$.g[incell], e = d$.e[incell]))
  cells <- cells[order(cells$g, cells$e), ]
  k_cells <- nrow(cells)
  dum <- sapply(seq_len(k_cells), function(k) {
    as.numeric(incell & d$.g == cells$g[k] & d$.e == cells$e[k])
  })
  colnames(dum) <- paste0("cell", seq_len(k_cells))
  frame <- data.frame(dum)
  for (v in cs$covariates) frame[[v]] <- d[[v]]
  frame$.y <- d[[cs$outcome]]
  frame$.unit <- factor(d[[cs$unit]])
  frame$.time <- factor(d[[cs$time]])
  m <- if (is.null(cs$weights)) rep(1, n) else as.numeric(d[[cs$weights]])
  frame$.w <- m
  rhs <- paste(c(colnames(dum), cs$covariates, ".unit", ".time"), collapse = " + ")
  fit <- lm(as.formula(paste(".y ~", rhs)), data = frame, weights = .w)
  stopifnot(!anyNA(coef(fit)))

  cl <- d[[cs$cluster]]
  clf <- factor(cl)
  n_clusters <- nlevels(clf)
  n_units <- nlevels(frame$.unit)
  n_periods <- nlevels(frame$.time)
  nested <- all(tapply(as.character(cl), d[[cs$unit]], function(x) length(unique(x))) == 1)
  stopifnot(nested)
  k_par <- length(coef(fit)) - (n_units - 1)
  stopifnot(k_par == 1 + (n_periods - 1) + k_cells + length(cs$covariates))
  ssc <- n_clusters / (n_clusters - 1) * (n - 1) / (n - k_par)
  vc <- vcovCL(fit, cluster = cl, type = "HC0", cadjust = FALSE) * ssc
  terms <- c(colnames(dum), cs$covariates)
  beta <- coef(fit)[terms]
  vbeta <- vc[terms, terms, drop = FALSE]
  delta <- beta[seq_len(k_cells)]
  vdelta <- vbeta[seq_len(k_cells), seq_len(k_cells), drop = FALSE]

  # Aggregates: one per event time, then the ATT over post cells.
  ev <- sort(unique(cells$e))
  member <- rbind(t(sapply(ev, function(l) as.numeric(cells$e == l))),
                  as.numeric(cells$e >= 0))
  n_agg <- nrow(member)
  pi <- matrix(0, n_agg, k_cells)
  psi <- matrix(0, n_clusters, n_agg)
  for (j in seq_len(n_agg)) {
    ks <- which(member[j, ] == 1)
    in_agg <- as.numeric(dum[, ks, drop = FALSE] %*% rep(1, length(ks)))
    sub <- in_agg == 1
    total <- sum(m[sub])
    row_if <- numeric(n)
    for (k in ks) {
      yk <- dum[sub, k]
      ones <- in_agg[sub]
      share_fit <- lm(yk ~ 0 + ones, weights = m[sub])
      pi[j, k] <- coef(share_fit)[[1]]
      row_if[sub] <- row_if[sub] + delta[[k]] * estfun(share_fit)[, 1] / total
    }
    psi[, j] <- rowsum(row_if, clf)[levels(clf), 1]
  }
  est <- as.vector(pi %*% delta)
  cov_fixed <- pi %*% vdelta %*% t(pi)
  cov_total <- cov_fixed + n_clusters / (n_clusters - 1) * t(psi) %*% psi
  post <- as.numeric(ev >= 0)
  lin <- rbind(diag(n_agg), c(post / sum(post), 0))
  est <- as.vector(lin %*% est)
  cov_fixed <- lin %*% cov_fixed %*% t(lin)
  cov_total <- lin %*% cov_total %*% t(lin)
  n_ev <- length(ev)

  pre <- which(ev < 0)
  pretrend <- NULL
  if (length(pre)) {
    b <- est[pre]
    fstat <- as.numeric(t(b) %*% solve(cov_total[pre, pre, drop = FALSE], b)) / length(pre)
    pretrend <- list(statistic = fstat, df_num = length(pre), df_denom = n_clusters - 1,
                     p_value = pf(fstat, length(pre), n_clusters - 1, lower.tail = FALSE))
  }

  spec <- list(outcome = cs$outcome, unit = cs$unit, time = cs$time,
               first_treated = cs$first, cluster = cs$cluster, control = cs$control,
               reference = cs$reference)
  if (length(cs$covariates)) spec$covariates <- as.list(cs$covariates)
  if (!is.null(cs$weights)) spec$weights <- cs$weights
  if (!is.null(cs$window)) spec$window <- as.list(cs$window)

  list(
    name = cs$name, file = cs$file, spec = spec,
    n_obs = n, n_units = n_units, n_periods = n_periods, n_clusters = n_clusters,
    n_params = k_par, small_sample_factor = ssc,
    cohort_effects = list(
      cohort = cells$g, event_time = cells$e, estimate = unname(delta),
      std_error = unname(sqrt(diag(vdelta))), share = pi[cbind(match(cells$e, ev),
                                                                seq_len(k_cells))]
    ),
    covariates = list(term = as.list(cs$covariates),
                      estimate = unname(beta[cs$covariates]),
                      std_error = unname(sqrt(diag(vbeta))[cs$covariates])),
    coef_cov = unname(vbeta),
    event_study = list(
      event_time = ev, estimate = est[seq_len(n_ev)],
      std_error = sqrt(diag(cov_total))[seq_len(n_ev)],
      std_error_fixed_shares = sqrt(diag(cov_fixed))[seq_len(n_ev)]
    ),
    event_study_cov = unname(cov_total[seq_len(n_ev), seq_len(n_ev)]),
    att = list(estimate = est[n_ev + 1], std_error = sqrt(cov_total[n_ev + 1, n_ev + 1]),
               std_error_fixed_shares = sqrt(cov_fixed[n_ev + 1, n_ev + 1])),
    post_average = list(estimate = est[n_ev + 2],
                        std_error = sqrt(cov_total[n_ev + 2, n_ev + 2]),
                        std_error_fixed_shares = sqrt(cov_fixed[n_ev + 2, n_ev + 2])),
    pretrend = pretrend
  )
}

out <- list(
  generator = "tests/reference/sun_abraham/make_reference.R",
  r_version = R.version.string,
  sandwich = as.character(packageVersion("sandwich")),
  cases = lapply(cases, run_case)
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(here, "reference.json"))
writeLines(capture.output(sessionInfo()), file.path(here, "sessionInfo.txt"))
