# Reference values for weighted cpdimpact.multilevel fits (prior weights, as lmer(weights = w)),
# from lme4::lmer with lmerTest Satterthwaite df.
#
#   Rscript tests/reference/multilevel/weighted.R
#
# Adds a weight column `w` to crtData.csv, three_level.csv and slope.csv (random, seeded,
# normalised to mean one: cpdimpact normalises weights that way, and lme4's fit with w * c
# differs only in sigma, by sqrt(c)), writes weighted_<data>.csv and weighted.json (plus
# weighted_sessionInfo.txt). Optimiser and output fields as in make_reference.R (README.md).

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."

# bobyqa with a tiny final trust radius, boundary projection and a Newton polish (as in
# make_reference.R).
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
  if (fval > o$fval + 1e-9) { p <- o$par; fval <- o$fval }
  list(par = p, fval = fval, value = fval, conv = 0L,
       message = "bobyqa + boundary projection + Newton polish")
}
ctrl <- lmerControl(optimizer = polished_bobyqa)

fixname <- function(x) ifelse(x == "(Intercept)", "Intercept", x)
ourgroup <- function(g) sub(":.*$", "", g)
named <- function(values, names) {
  out <- as.list(unname(values))
  names(out) <- names
  if (!length(out)) out <- setNames(list(), character(0))
  out
}

add_weights <- function(source, target, seed) {
  dat <- read.csv(file.path(here, source))
  set.seed(seed)
  w <- round(runif(nrow(dat), 0.2, 3), 3)
  dat$w <- w / mean(w)
  write.csv(dat, file.path(here, target), row.names = FALSE)
  target
}

case <- function(name, data, formula, method, covariates, groups,
                 slopes = setNames(list(), character(0))) {
  list(name = name, data = data, formula = formula, method = method,
       covariates = covariates, groups = groups, slopes = slopes)
}

crt <- add_weights("crtData.csv", "weighted_crtData.csv", 101)
three <- add_weights("three_level.csv", "weighted_three_level.csv", 102)
slope <- add_weights("slope.csv", "weighted_slope.csv", 103)
cases <- list(
  case("crt_weighted_reml", crt, "Posttest ~ Intervention + Prettest + (1 | School)", "reml",
       c("Intervention", "Prettest"), c("School")),
  case("crt_weighted_ml", crt, "Posttest ~ Intervention + Prettest + (1 | School)", "ml",
       c("Intervention", "Prettest"), c("School")),
  case("crt_weighted_unconditional", crt, "Posttest ~ 1 + (1 | School)", "reml",
       character(0), c("School")),
  case("three_level_weighted_reml", three,
       "y ~ prior + fsm + treat + (1 | school/teacher)", "reml",
       c("prior", "fsm", "treat"), c("school", "teacher")),
  case("three_level_weighted_ml", three,
       "y ~ prior + fsm + treat + (1 | school/teacher)", "ml",
       c("prior", "fsm", "treat"), c("school", "teacher")),
  case("slope_weighted_reml", slope, "y ~ treat + prior + (1 + treat | school)", "reml",
       c("treat", "prior"), c("school"), list(school = list("treat")))
)

fit_case <- function(cs) {
  dat <- read.csv(file.path(here, cs$data))
  for (g in cs$groups) dat[[g]] <- factor(dat[[g]], levels = sort(unique(dat[[g]])))
  reml <- cs$method == "reml"
  fit <- lmerTest::lmer(as.formula(cs$formula), data = dat, REML = reml, weights = w,
                        control = ctrl)
  sm <- summary(fit)
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
  re <- ranef(fit, condVar = TRUE)
  random_effects <- list()
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
  }
  random_effects <- random_effects[cs$groups]
  # the same fit with weights times 7: lme4 leaves all but sigma unchanged
  scaled <- dat
  scaled$w <- scaled$w * 7
  fit7 <- lme4::lmer(as.formula(cs$formula), data = scaled, REML = reml, weights = w,
                     control = ctrl)
  vb <- as.matrix(vcov(fit))
  dimnames(vb) <- list(terms, terms)
  list(
    name = cs$name, data = cs$data, formula = cs$formula, method = cs$method,
    covariates = as.list(cs$covariates), groups = as.list(cs$groups), slopes = cs$slopes,
    fixed = named(co[, "Estimate"], terms),
    std_errors = named(co[, "Std. Error"], terms),
    satterthwaite_df = named(co[, "df"], terms),
    vcov = lapply(setNames(terms, terms), function(t) named(vb[t, ], terms)),
    variance_components = named(vc$vcov, vnames),
    loglik = as.numeric(logLik(fit)),
    theta = as.list(unname(getME(fit, "theta"))),
    sigma = sigma(fit),
    n_obs = nobs(fit),
    singular = isSingular(fit),
    random_effects = random_effects,
    weights_times_7 = list(fixed = named(fixef(fit7), fixname(names(fixef(fit7)))),
                           sigma = sigma(fit7), loglik = as.numeric(logLik(fit7)))
  )
}

results <- lapply(cases, fit_case)
names(results) <- sapply(cases, `[[`, "name")
ref <- list(
  description = "lme4::lmer(weights = w) fits (lmerTest Satterthwaite df); see README.md.",
  versions = list(R = R.version.string,
                  lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest"))),
  cases = results
)
writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "weighted.json"))
writeLines(capture.output(sessionInfo()), file.path(here, "weighted_sessionInfo.txt"))
for (r in results) cat(sprintf("%-28s sigma=%.6f loglik=%.6f singular=%s\n", r$name, r$sigma,
                               r$loglik, r$singular))
