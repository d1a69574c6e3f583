# CR2 reference values for tests/test_cr2.py, from lm() with factor fixed effects and clubSandwich.
#
#   Rscript tests/reference/cr2/make_reference.R
#
# Reads the CSVs written by make_data.py and writes reference.json and sessionInfo.txt next to
# this script. Each case fits y ~ targets + covariates + factor(school) + factor(year) by lm()
# (with weights = w when the case is weighted): the full design with the fixed effects as
# dummies. It stores, for the reported terms,
#   vcovCR(fit, cluster, type = "CR2")                    (covariance)
#   coef_test(fit, V, test = "Satterthwaite")             (SE, t, df, p)
#   Wald_test(fit, constrain_zero(pre), V, test = "HTZ")  (event studies: the pre-period terms)
# and, for comparison, the same CR2 from the absorbed design (every column demeaned within
# schools with the weights, no dummies), which equals the full design without weights
# (Pustejovsky & Tipton 2018, Theorem 2) but not with them (clubSandwich's weighted lm uses
# inverse_var = FALSE, working model Phi = I).

suppressPackageStartupMessages({
  library(sandwich)
  library(clubSandwich)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."

cases <- list(
  list(name = "did_school", data = "school_years.csv", kind = "did",
       covariates = list("x"), cluster = "school"),
  list(name = "did_area", data = "school_years.csv", kind = "did",
       covariates = list("x"), cluster = "area"),
  list(name = "did_weighted_area", data = "school_years.csv", kind = "did",
       covariates = list("x"), cluster = "area", weights = "n_pupils"),
  list(name = "did_unbalanced_school", data = "school_years_unbalanced.csv", kind = "did",
       covariates = list("x"), cluster = "school"),
  list(name = "did_unbalanced_weighted_area", data = "school_years_unbalanced.csv",
       kind = "did", covariates = list(), cluster = "area", weights = "n_pupils"),
  list(name = "did_pupils_school", data = "pupils.csv", kind = "did",
       covariates = list("prior"), cluster = "school"),
  list(name = "did_pupils_area", data = "pupils.csv", kind = "did",
       covariates = list("prior"), cluster = "area"),
  list(name = "did_pupils_weighted_area", data = "pupils.csv", kind = "did",
       covariates = list("prior"), cluster = "area", weights = "w"),
  list(name = "es_area", data = "school_years.csv", kind = "es",
       covariates = list("x"), cluster = "area", reference = -1),
  list(name = "es_weighted_area", data = "school_years.csv", kind = "es",
       covariates = list(), cluster = "area", weights = "n_pupils", reference = -1,
       window = c(-2, 2)),
  list(name = "es_unbalanced_school", data = "school_years_unbalanced.csv", kind = "es",
       covariates = list("x"), cluster = "school", reference = -1),
  list(name = "es_pupils_area", data = "pupils.csv", kind = "es",
       covariates = list("prior"), cluster = "area", reference = -1),
  list(name = "es_pupils_weighted_school", data = "pupils.csv", kind = "es",
       covariates = list("prior"), cluster = "school", weights = "w", reference = -1),
  list(name = "es_singular_area", data = "singular.csv", kind = "es",
       covariates = list("x"), cluster = "area", reference = -1),
  list(name = "es_singular_weighted_area", data = "singular.csv", kind = "es",
       covariates = list(), cluster = "area", weights = "n_pupils", reference = -1),
  list(name = "did_near_singular", data = "near_singular.csv", kind = "did",
       covariates = list("x"), cluster = "area"),
  list(name = "did_near_singular_weighted", data = "near_singular_weighted.csv", kind = "did",
       covariates = list("x"), cluster = "area", weights = "w")
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

# Weighted deviations from school means.
within <- function(z, unit, w) z - ave(z * w, unit, FUN = sum) / ave(w, unit, FUN = sum)

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
  weighted <- !is.null(case$weights)
  df$w <- if (weighted) d[[case$weights]] else 1
  f <- as.formula(paste("y ~", paste(c(safe, covs), collapse = " + "), "+ unit + year"))
  fit <- if (weighted) lm(f, data = df, weights = w) else lm(f, data = df)
  stopifnot(!anyNA(coef(fit)))
  cl <- d[[case$cluster]]
  stopifnot(all(tapply(cl, df$unit, function(z) length(unique(z))) == 1))  # nested
  terms <- c(safe, covs)
  labels <- c(colnames(X), covs)

  V <- vcovCR(fit, cluster = cl, type = "CR2")
  ct <- as.data.frame(unclass(coef_test(fit, vcov = V, test = "Satterthwaite", coefs = terms)))

  # Absorbed design: everything demeaned within schools (weighted), no dummies, no constant.
  years <- model.matrix(~ year, data = df)[, -1, drop = FALSE]
  ab <- data.frame(y = within(df$y, df$unit, df$w))
  for (t in c(terms)) ab[[t]] <- within(df[[t]], df$unit, df$w)
  for (j in seq_len(ncol(years))) ab[[paste0("yr", j)]] <- within(years[, j], df$unit, df$w)
  fa <- as.formula(paste("y ~ 0 +", paste(c(terms, paste0("yr", seq_len(ncol(years)))),
                                          collapse = " + ")))
  fit_ab <- if (weighted) lm(fa, data = ab, weights = df$w) else lm(fa, data = ab)
  ct_ab <- as.data.frame(unclass(coef_test(fit_ab, vcov = "CR2", cluster = cl,
                                           test = "Satterthwaite", coefs = terms)))

  out <- list(
    name = case$name, data = case$data, kind = case$kind, cluster = case$cluster,
    covariates = as.list(covs), weights = case$weights, reference = case$reference,
    window = case$window,
    n_obs = nrow(df), n_clusters = length(unique(cl)),
    terms = as.list(labels), event_times = if (is.null(values)) NULL else I(values),
    estimate = I(unname(coef(fit)[terms])),
    vcov = unname(as.matrix(V)[terms, terms, drop = FALSE]),
    std_error = I(unname(ct$SE)), statistic = I(unname(ct$tstat)),
    df = I(unname(ct$df_Satt)), p_value = I(unname(ct$p_Satt)),
    absorbed_std_error = I(unname(ct_ab$SE)), absorbed_df = I(unname(ct_ab$df_Satt))
  )
  if (case$kind == "es") {
    pre <- which(values < 0)
    if (length(pre)) {
      wt <- as.data.frame(unclass(Wald_test(fit, constraints = constrain_zero(terms[pre]),
                                            vcov = V, test = "HTZ")))
      out$pretrend <- list(statistic = wt$Fstat, delta = wt$delta, df_num = wt$df_num,
                           df_denom = wt$df_denom, p_value = wt$p_val,
                           terms = as.list(labels[pre]))
    }
  }
  out
}

results <- lapply(cases, fit_case)
doc <- list(
  generated_by = "tests/reference/cr2/make_reference.R",
  r_version = R.version.string,
  packages = list(sandwich = as.character(packageVersion("sandwich")),
                  clubSandwich = as.character(packageVersion("clubSandwich")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  convention = paste("lm(y ~ targets + covariates + factor(school) + factor(year), weights);",
                     "clubSandwich vcovCR(type = 'CR2') (weighted: inverse_var = FALSE),",
                     "coef_test(test = 'Satterthwaite'), Wald_test(test = 'HTZ')"),
  cases = results
)
writeLines(toJSON(doc, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(here, "reference.json"))
writeLines(capture.output(sessionInfo()), file.path(here, "sessionInfo.txt"))
