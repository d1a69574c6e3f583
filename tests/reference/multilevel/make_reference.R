# Reference values for cpdimpact.multilevel, from lme4::lmer (+ lmerTest for Satterthwaite df).
#
#   Rscript tests/reference/multilevel/make_reference.R
#
# Reads the CSVs next to this script (written by make_data.py, plus crtData.csv / mstData.csv
# from eefAnalytics 1.1.5) and writes reference.json and sessionInfo.txt next to it.
# Every fit uses bobyqa with a very small final trust radius and a Newton polish (see
# polished_bobyqa below), then is cross-checked against a second, independent optimisation
# (nloptwrap / NLOPT_LN_BOBYQA with tight tolerances, started elsewhere); the gradient at the
# reported optimum and the |theta| and criterion differences from the check fit are recorded
# per case ("optimum_check").
#
# Naming used in reference.json (not lme4's):
#   * intercept "Intercept" (lme4: "(Intercept)");
#   * a random intercept's variance is named by its own level: "school", "teacher", "area"
#     (lme4: "school", "teacher:school", "teacher:(school:area)");
#   * a random slope variance "school:treat", the intercept-slope covariance
#     "school:Intercept:treat", the residual variance "Residual";
#   * random_effects ids are the full path, outermost first: [school, teacher].

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."

# bobyqa (minqa, as lmerControl(optimizer = "bobyqa")) with a tiny final trust radius, then a
# polish: a covariance parameter on its lower bound 0 that bobyqa left at < 1e-4 is set to 0
# exactly when that does not raise the criterion (the criterion is even in a diagonal theta, so
# bobyqa creeps towards such a boundary only slowly), and Newton steps with Richardson-
# extrapolated numerical derivatives (numDeriv) on the remaining parameters drive the gradient
# to ~0. lme4 evaluates the fit at the returned theta.
polished_bobyqa <- function(par, fn, lower, upper, control = list()) {
  o <- minqa::bobyqa(par, fn, lower, upper,
                     control = list(maxfun = 1e5, rhobeg = 0.01, rhoend = 1e-10))
  p <- o$par
  f <- o$fval
  at_bound <- lower == 0 & p < 1e-4
  for (i in which(at_bound)) {
    q <- p
    q[i] <- 0
    if (fn(q) <= f + 1e-9) p <- q else at_bound[i] <- FALSE
  }
  free <- which(!(at_bound & p == 0))
  if (length(free)) {
    g_free <- function(x) { q <- p; q[free] <- x; fn(q) }
    for (it in 1:20) {
      g <- numDeriv::grad(g_free, p[free])
      h <- numDeriv::hessian(g_free, p[free])
      step <- solve(h, g)
      cand <- p
      cand[free] <- pmax(p[free] - step, lower[free])
      if (fn(cand) > fn(p) + 1e-10) break
      p <- cand
      if (max(abs(step)) < 1e-12) break
    }
  }
  fval <- fn(p)
  if (fval > o$fval + 1e-9) { p <- o$par; fval <- o$fval }   # never worse than bobyqa
  list(par = p, fval = fval, value = fval, conv = 0L,
       message = "bobyqa + boundary projection + Newton polish")
}
ctrl <- lmerControl(optimizer = polished_bobyqa)
ctrl_check <- lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", maxeval = 1e5,
                                         xtol_abs = 1e-14, ftol_abs = 1e-15,
                                         xtol_rel = 0, ftol_rel = 0))

case <- function(name, data, formula, method, covariates, groups,
                 slopes = setNames(list(), character(0))) {
  list(name = name, data = data, formula = formula, method = method,
       covariates = covariates, groups = groups, slopes = slopes)
}

cases <- list(
  case("two_level_reml", "two_level.csv", "y ~ x1 + x2 + treat + (1 | school)", "reml",
       c("x1", "x2", "treat"), c("school")),
  case("two_level_ml", "two_level.csv", "y ~ x1 + x2 + treat + (1 | school)", "ml",
       c("x1", "x2", "treat"), c("school")),
  case("three_level_reml", "three_level.csv", "y ~ prior + fsm + treat + (1 | school/teacher)",
       "reml", c("prior", "fsm", "treat"), c("school", "teacher")),
  case("three_level_ml", "three_level.csv", "y ~ prior + fsm + treat + (1 | school/teacher)",
       "ml", c("prior", "fsm", "treat"), c("school", "teacher")),
  case("four_level_reml", "four_level.csv", "y ~ x + (1 | area/school/teacher)", "reml",
       c("x"), c("area", "school", "teacher")),
  case("slope_reml", "slope.csv", "y ~ treat + prior + (1 + treat | school)", "reml",
       c("treat", "prior"), c("school"), list(school = list("treat"))),
  case("singular_reml", "singular.csv", "y ~ x1 + (1 | school)", "reml", c("x1"), c("school")),
  case("crt_conditional", "crtData.csv", "Posttest ~ Intervention + Prettest + (1 | School)",
       "reml", c("Intervention", "Prettest"), c("School")),
  case("crt_unconditional", "crtData.csv", "Posttest ~ 1 + (1 | School)", "reml",
       character(0), c("School")),
  case("mst_multisite", "mstData.csv",
       "Posttest ~ Intervention + Prettest + (1 + Intervention | School)", "reml",
       c("Intervention", "Prettest"), c("School"), list(School = list("Intervention"))),
  case("mst_unconditional", "mstData.csv", "Posttest ~ 1 + (1 | School)", "reml",
       character(0), c("School"))
)

fixname <- function(x) ifelse(x == "(Intercept)", "Intercept", x)
# lme4 group name -> our name: the unit's own level, i.e. the part before the first ":".
ourgroup <- function(g) sub(":.*$", "", g)
named <- function(values, names) {
  out <- as.list(unname(values))
  names(out) <- names
  if (!length(out)) out <- setNames(list(), character(0))
  out
}

# |gradient| of the criterion at the reported theta, over the theta not fixed on a bound
grad_free <- function(fit) {
  dfun <- update(fit, devFunOnly = TRUE)
  th <- getME(fit, "theta")
  free <- which(!(getME(fit, "lower") == 0 & th == 0))
  if (!length(free)) return(0)
  max(abs(numDeriv::grad(function(x) { q <- th; q[free] <- x; dfun(q) }, th[free])))
}

fit_case <- function(cs) {
  dat <- read.csv(file.path(here, cs$data))
  # grouping columns as factors (levels in numeric order of the integer ids)
  for (g in cs$groups) dat[[g]] <- factor(dat[[g]], levels = sort(unique(dat[[g]])))
  reml <- cs$method == "reml"
  f <- as.formula(cs$formula)
  fit <- lmerTest::lmer(f, data = dat, REML = reml, control = ctrl)
  check <- lme4::lmer(f, data = dat, REML = reml, control = ctrl_check,
                      start = list(theta = getME(fit, "theta") * 0.7 +
                                     0.05 * (getME(fit, "lower") == 0)))

  sm <- summary(fit)                              # lmerTest summary: Satterthwaite df
  co <- sm$coefficients
  terms <- fixname(rownames(co))
  stopifnot(identical(terms, c("Intercept", cs$covariates)))

  vc <- as.data.frame(VarCorr(fit))
  vnames <- character(nrow(vc))
  for (i in seq_len(nrow(vc))) {
    g <- vc$grp[i]
    if (g == "Residual") {
      vnames[i] <- "Residual"
    } else if (is.na(vc$var2[i])) {
      vnames[i] <- if (vc$var1[i] == "(Intercept)") ourgroup(g) else
        paste(ourgroup(g), fixname(vc$var1[i]), sep = ":")
    } else {
      vnames[i] <- paste(ourgroup(g), fixname(vc$var1[i]), fixname(vc$var2[i]), sep = ":")
    }
  }
  stopifnot(!anyDuplicated(vnames))

  re <- ranef(fit, condVar = TRUE)
  random_effects <- list()
  random_effects_cond_cov <- setNames(list(), character(0))
  for (g in names(re)) {
    r <- re[[g]]
    pv <- attr(r, "postVar")
    ids <- lapply(strsplit(rownames(r), ":"), function(p) as.integer(rev(p)))
    key <- do.call(order, lapply(seq_along(ids[[1]]), function(k) sapply(ids, `[`, k)))
    out <- list()
    for (j in head(key, 10)) {
      for (k in seq_len(ncol(r))) {
        out[[length(out) + 1]] <- list(ids = as.list(ids[[j]]), term = fixname(colnames(r)[k]),
                                       estimate = r[j, k], cond_sd = sqrt(pv[k, k, j]))
      }
    }
    random_effects[[ourgroup(g)]] <- out
    if (ncol(r) == 2) {                 # conditional covariance of intercept and slope
      cc <- list()
      for (j in head(key, 10)) {
        cc[[length(cc) + 1]] <- list(ids = as.list(ids[[j]]),
                                     term = paste(fixname(colnames(r)), collapse = ":"),
                                     cond_cov = pv[1, 2, j])
      }
      random_effects_cond_cov[[ourgroup(g)]] <- cc
    }
  }
  random_effects <- random_effects[cs$groups]

  ng <- ngrps(fit)
  theta <- getME(fit, "theta")
  crit <- if (reml) REMLcrit(fit) else deviance(fit)
  crit_check <- if (reml) REMLcrit(check) else deviance(check)
  vb <- as.matrix(vcov(fit))
  dimnames(vb) <- list(terms, terms)

  list(
    name = cs$name, data = cs$data, formula = cs$formula, method = cs$method,
    covariates = as.list(cs$covariates), groups = as.list(cs$groups), slopes = cs$slopes,
    fixed = named(co[, "Estimate"], terms),
    std_errors = named(co[, "Std. Error"], terms),
    satterthwaite_df = named(co[, "df"], terms),
    t_values = named(co[, "t value"], terms),
    p_values = named(co[, "Pr(>|t|)"], terms),
    vcov = lapply(setNames(terms, terms), function(t) named(vb[t, ], terms)),
    variance_components = named(vc$vcov, vnames),
    loglik = as.numeric(logLik(fit)),
    deviance_or_reml_criterion = crit,
    aic = AIC(fit), bic = BIC(fit),
    n_params = attr(logLik(fit), "df"),
    theta = as.list(unname(theta)),
    theta_lme4_names = as.list(names(theta)),
    sigma = sigma(fit),
    n_obs = nobs(fit),
    n_groups = named(ng, ourgroup(names(ng))),
    lme4_group_names = named(names(ng), ourgroup(names(ng))),
    singular = isSingular(fit),
    random_effects = random_effects,
    random_effects_cond_cov = random_effects_cond_cov,
    optimum_check = list(
      max_abs_gradient_free_theta = grad_free(fit),
      max_abs_theta_diff = max(abs(theta - getME(check, "theta"))),
      criterion_diff = crit_check - crit,
      max_abs_fixed_diff = max(abs(fixef(fit) - fixef(check))),
      lme4_messages = as.list(fit@optinfo$conv$lme4$messages)
    )
  )
}

results <- lapply(cases, fit_case)
names(results) <- sapply(cases, `[[`, "name")

ref <- list(
  description = paste(
    "lme4::lmer fits (lmerTest Satterthwaite df) for cpdimpact.multilevel;",
    "see README.md for naming and conventions."),
  versions = list(R = R.version.string,
                  lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  Matrix = as.character(packageVersion("Matrix"))),
  cases = results
)

writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "reference.json"))
writeLines(capture.output(sessionInfo()), file.path(here, "sessionInfo.txt"))

for (r in results) {
  cat(sprintf("%-18s n=%4d groups=%-28s singular=%-5s grad=%.1e check: dtheta=%.1e dcrit=%.1e dbeta=%.1e\n",
              r$name, r$n_obs,
              paste(sprintf("%s:%d", names(r$n_groups), unlist(r$n_groups)), collapse = ","),
              r$singular, r$optimum_check$max_abs_gradient_free_theta,
              r$optimum_check$max_abs_theta_diff, r$optimum_check$criterion_diff,
              r$optimum_check$max_abs_fixed_diff))
}
