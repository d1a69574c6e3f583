# Reference values for tests/test_did.py, from lm() with factor fixed effects and sandwich.
#
#   Rscript tests/reference/did/make_reference.R
#
# Reads the CSVs written by make_data.py and writes reference.json and sessionInfo.txt next to
# this script. Each case fits y ~ targets + covariates + factor(school) + factor(year) by lm()
# (weighted when the case has weights), takes the unadjusted cluster sandwich
# sandwich::vcovCL(type = "HC0", cadjust = FALSE) and applies the documented small-sample factor
# G/(G-1) * (N-1)/(N-K) explicitly, with K = all lm coefficients minus the U-1 school dummies
# (schools are nested in every cluster variable used here), i.e. the Stata xtreg, fe
# vce(cluster) / fixest convention. Pre-trend: F = b' V^-1 b / q against F(q, G-1).
# clubSandwich CR1 / CR2 (with Satterthwaite df) are recorded for the coming few-cluster work.

suppressPackageStartupMessages({
  library(sandwich)
  library(clubSandwich)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."

cases <- list(
  list(name = "did_pupil_cov", data = "pupils_single.csv", kind = "did",
       covariates = list("prior"), cluster = "school"),
  list(name = "did_means_weighted", data = "school_years.csv", kind = "did",
       covariates = list("prior"), cluster = "school", weights = "n_pupils"),
  list(name = "did_staggered", data = "pupils_staggered.csv", kind = "did",
       covariates = list(), cluster = "school"),
  list(name = "es_pupil_all", data = "pupils_staggered.csv", kind = "es",
       covariates = list("prior"), cluster = "school", reference = -1),
  list(name = "es_window_area", data = "pupils_staggered.csv", kind = "es",
       covariates = list("prior"), cluster = "area", reference = -1, window = c(-3, 2)),
  list(name = "did_unbalanced", data = "pupils_unbalanced.csv", kind = "did",
       covariates = list("prior"), cluster = "school"),
  list(name = "es_unbalanced", data = "pupils_unbalanced.csv", kind = "es",
       covariates = list("prior"), cluster = "school", reference = -1),
  list(name = "es_means_weighted", data = "school_years.csv", kind = "es",
       covariates = list(), cluster = "school", weights = "n_pupils", reference = -1,
       window = c(-2, 2))
)

event_dummies <- function(d, reference, window) {
  treated <- d$first_treated != 0 & !is.na(d$first_treated)
  e <- ifelse(treated, d$year - d$first_treated, NA)
  binned_lo <- binned_hi <- FALSE
  if (!is.null(window)) {
    binned_lo <- any(e[treated] < window[1])
    binned_hi <- any(e[treated] > window[2])
    e <- pmin(pmax(e, window[1]), window[2])
  }
  vals <- sort(setdiff(unique(e[treated]), reference))
  lo <- min(c(vals, reference))
  hi <- max(c(vals, reference))
  nm <- vapply(vals, function(v) {
    if (v == lo && binned_lo) paste0("event_time<=", v)
    else if (v == hi && binned_hi) paste0("event_time>=", v)
    else paste0("event_time=", v)
  }, character(1))
  X <- vapply(vals, function(v) as.numeric(!is.na(e) & e == v), numeric(nrow(d)))
  colnames(X) <- nm
  list(X = X, values = vals)
}

fit_case <- function(case) {
  d <- read.csv(file.path(here, case$data), stringsAsFactors = FALSE)
  covs <- unlist(case$covariates)
  if (case$kind == "did") {
    X <- matrix(d$exposed, ncol = 1, dimnames = list(NULL, "exposed"))
    values <- NULL
  } else {
    ev <- event_dummies(d, case$reference, case$window)
    X <- ev$X
    values <- ev$values
  }
  safe <- paste0("x", seq_len(ncol(X)))  # formula-safe names, mapped back below
  df <- data.frame(y = d$outcome, unit = factor(d$school), year = factor(d$year))
  for (j in seq_along(safe)) df[[safe[j]]] <- X[, j]
  for (cv in covs) df[[cv]] <- d[[cv]]
  df$w <- if (is.null(case$weights)) 1 else d[[case$weights]]
  f <- as.formula(paste("y ~", paste(c(safe, covs), collapse = " + "), "+ unit + year"))
  fit <- if (is.null(case$weights)) lm(f, data = df) else lm(f, data = df, weights = w)
  stopifnot(!anyNA(coef(fit)))

  cl <- d[[case$cluster]]
  terms <- c(safe, covs)
  labels <- c(colnames(X), covs)
  N <- nrow(df); G <- length(unique(cl)); U <- nlevels(df$unit); Tn <- nlevels(df$year)
  nested <- all(tapply(cl, df$unit, function(z) length(unique(z))) == 1)
  stopifnot(nested)
  K <- fit$rank - (U - 1)
  stopifnot(K == 1 + (Tn - 1) + length(terms))
  ssc <- G / (G - 1) * (N - 1) / (N - K)
  V0 <- vcovCL(fit, cluster = cl, type = "HC0", cadjust = FALSE)[terms, terms, drop = FALSE]
  V <- V0 * ssc
  b <- coef(fit)[terms]

  cr1 <- vcovCR(fit, cluster = cl, type = "CR1")[terms, terms, drop = FALSE]
  cr2 <- coef_test(fit, vcov = "CR2", cluster = cl, test = "Satterthwaite", coefs = terms)

  out <- list(
    name = case$name, data = case$data, kind = case$kind, cluster = case$cluster,
    covariates = as.list(covs), weights = case$weights, reference = case$reference,
    window = case$window,
    n_obs = N, n_units = U, n_periods = Tn, n_clusters = G, n_params = K,
    small_sample_factor = ssc, df = G - 1,
    terms = as.list(labels), event_times = if (is.null(values)) NULL else I(values),
    estimate = I(unname(b)), std_error = I(unname(sqrt(diag(V)))),
    vcov = unname(V),
    clubsandwich_cr1_se = I(unname(sqrt(diag(cr1)))),
    clubsandwich_cr2_se = I(unname(cr2$SE)),
    clubsandwich_cr2_df = I(unname(cr2$df_Satt))
  )
  if (case$kind == "es") {
    pre <- which(values < 0)
    if (length(pre)) {
      bp <- b[pre]
      Fstat <- as.numeric(t(bp) %*% solve(V[pre, pre, drop = FALSE], bp)) / length(pre)
      out$pretrend <- list(statistic = Fstat, df_num = length(pre), df_denom = G - 1,
                           p_value = pf(Fstat, length(pre), G - 1, lower.tail = FALSE),
                           terms = as.list(labels[pre]))
    }
  }
  out
}

results <- lapply(cases, fit_case)
doc <- list(
  generated_by = "tests/reference/did/make_reference.R",
  r_version = R.version.string,
  packages = list(sandwich = as.character(packageVersion("sandwich")),
                  clubSandwich = as.character(packageVersion("clubSandwich")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  convention = paste("V = G/(G-1) * (N-1)/(N-K) * vcovCL(type='HC0', cadjust=FALSE);",
                     "K excludes the school dummies (nested in clusters); t/F with G-1 df"),
  cases = results
)
writeLines(toJSON(doc, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(here, "reference.json"))
writeLines(capture.output(sessionInfo()), file.path(here, "sessionInfo.txt"))
