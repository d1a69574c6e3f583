# Reference values for binomial / Poisson mixed models, from lme4::glmer and glmmTMB.
#
#   Rscript tests/reference/glmer/make_reference.R
#
# Reads the CSVs in data/ (written by make_data.py and make_star.py) and writes reference.json
# and sessionInfo.txt next to this script. See README.md for the cases, the layout of
# reference.json and the intended tolerances.
#
# Every glmer fit (Laplace, nAGQ = 5, nAGQ = 25) uses bobyqa with a tiny final trust radius and
# a Newton polish (polished_bobyqa below) in both of glmer's stages, and PIRLS converged to
# tolPwrss = 1e-14; it is then refitted independently (nloptwrap / NLOPT_LN_BOBYQA with tight
# tolerances, started away from the optimum) and the largest relative difference in fixed
# effects, theta and deviance between the two is recorded as check_max_rel_diff. glmmTMB fits
# (nlminb) are polished by Newton steps on glmmTMB's exact gradient and compared with the glmer
# Laplace fit (crosscheck_glmmTMB_max_rel_diff); see README.md, "Convergence".
#
# Numbers are written with 17 significant digits (jsonlite stops at 15, so they are formatted
# with sprintf("%.17g") and inserted verbatim).

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."

# ---------------------------------------------------------------------------------------------
# Optimisers

# minqa::bobyqa (as glmerControl(optimizer = "bobyqa")) with a tiny final trust radius, then:
# a covariance parameter on its lower bound 0 that bobyqa left below 1e-4 is set to 0 exactly
# when that does not raise the deviance (the deviance is even in a diagonal theta, so bobyqa
# creeps towards such a boundary only slowly), and Newton steps with Richardson-extrapolated
# numerical derivatives (numDeriv) on the remaining parameters drive the gradient to ~0. The
# last evaluation of fn is at the returned parameters, so lme4's internal state matches them.
polished_bobyqa <- function(par, fn, lower, upper, control = list()) {
  o <- minqa::bobyqa(par, fn, lower, upper,
                     control = list(maxfun = 1e5, rhobeg = 0.02, rhoend = 1e-11))
  p <- o$par
  f <- fn(p)
  at_bound <- is.finite(lower) & lower == 0 & p < 1e-4
  for (i in which(at_bound)) {
    q <- p
    q[i] <- 0
    fq <- fn(q)
    if (fq <= f + 1e-9) { p <- q; f <- fq } else at_bound[i] <- FALSE
  }
  free <- which(!(at_bound & p == 0))
  newton_steps <- 0L
  if (length(free)) {
    g_free <- function(x) { q <- p; q[free] <- x; fn(q) }
    for (it in 1:20) {
      g <- numDeriv::grad(g_free, p[free])
      h <- numDeriv::hessian(g_free, p[free])
      step <- tryCatch(solve(h, g), error = function(e) rep(0, length(free)))
      cand <- p
      cand[free] <- pmax(p[free] - step, lower[free])
      fc <- fn(cand)
      if (!is.finite(fc) || fc > f + 1e-10) break
      p <- cand
      f <- fc
      newton_steps <- newton_steps + 1L
      if (max(abs(step)) < 1e-12) break
    }
  }
  if (f > o$fval + 1e-9) p <- o$par      # never worse than bobyqa
  f <- fn(p)
  list(par = p, fval = f, value = f, conv = 0L, feval = o$feval,
       message = sprintf("bobyqa (ierr %d) + boundary projection + %d Newton steps",
                         o$ierr, newton_steps))
}

ctrl <- glmerControl(optimizer = list(polished_bobyqa, polished_bobyqa), tolPwrss = 1e-14,
                     check.conv.singular = .makeCC(action = "ignore", tol = 1e-4))
ctrl_check <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-14,
                           optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", maxeval = 1e5,
                                          xtol_abs = 1e-13, ftol_abs = 1e-14,
                                          xtol_rel = 0, ftol_rel = 0),
                           check.conv.singular = .makeCC(action = "ignore", tol = 1e-4))
tmb_ctrl <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-12))
`%||%` <- function(a, b) if (is.null(a)) b else a

# ---------------------------------------------------------------------------------------------
# Cases

case <- function(name, data, formula, family = "binomial", weights = NULL, groups = "school",
                 agq = FALSE, tmb = TRUE, purpose = "") {
  list(name = name, data = data, formula = formula, family = family, weights = weights,
       groups = groups, agq = agq, tmb = tmb, purpose = purpose)
}

cases <- list(
  case("two_level_balanced", "data/two_level_balanced.csv", "y ~ x + treat + (1 | school)",
       agq = TRUE, purpose = "two-level random intercept, binary, balanced (40 x 25)"),
  case("three_level", "data/three_level.csv",
       "y ~ prior + fsm + treat + (1 | school/class)", groups = c("school", "class"),
       purpose = "three-level school/class, binary, unbalanced, unique class ids"),
  case("two_level_unbalanced", "data/two_level_unbalanced.csv",
       "y ~ x1 + x2 + treat + (1 | school)", agq = TRUE,
       purpose = "two-level, unbalanced (1 to 120 pupils per school), covariates"),
  case("slope", "data/slope.csv", "y ~ treat + prior + (1 + treat | school)",
       purpose = "correlated random slope of a within-school treatment (multisite)"),
  case("singular", "data/singular.csv", "y ~ x + (1 | school)", agq = TRUE, tmb = FALSE,
       purpose = "no school effect, school variance estimate exactly 0 (singular)"),
  case("near_singular", "data/near_singular.csv", "y ~ x + (1 | school)", agq = TRUE,
       purpose = "no school effect, school variance estimate small but positive"),
  case("rare", "data/rare.csv", "y ~ x + treat + (1 | school)", agq = TRUE,
       purpose = "rare outcome, about 3% successes"),
  case("star", "data/star.csv", "pass ~ small + freelunch + (1 | school)", agq = TRUE,
       purpose = "Tennessee STAR kindergarten maths >= 490, small class, free lunch"),
  case("poisson_three_level", "data/poisson_absence.csv",
       "days_absent ~ fsm + treat + (1 | school/class)", family = "poisson",
       groups = c("school", "class"), purpose = "Poisson counts (days absent), school/class"),
  case("poisson_two_level", "data/poisson_absence.csv", "days_absent ~ fsm + treat + (1 | school)",
       family = "poisson", agq = TRUE,
       purpose = "Poisson counts (days absent), school only (for adaptive quadrature)"),
  case("proportions", "data/proportions.csv", "rate ~ year + treat + (1 | school)",
       weights = "pupils", agq = TRUE,
       purpose = "binomial proportions with denominators (school-year pass rates)"),
  case("all_pass_school", "data/all_pass_school.csv", "y ~ x + (1 | school)", agq = TRUE,
       purpose = "one school in which every pupil passes, otherwise ordinary")
)

# ---------------------------------------------------------------------------------------------
# Helpers

v <- function(z) {                        # a number with 17 significant digits, verbatim
  z <- as.numeric(z)
  stopifnot(length(z) == 1)
  structure(if (is.finite(z)) sprintf("%.17g", z) else "null", class = "json")
}
vlist <- function(z) {                    # a numeric vector as a JSON array
  z <- as.numeric(z)
  structure(paste0("[", paste(vapply(z, function(x) unclass(v(x)), ""), collapse = ", "), "]"),
            class = "json")
}
vnamed <- function(z, nms = names(z)) {   # a named numeric vector as a JSON object
  out <- lapply(as.numeric(z), v)
  names(out) <- nms
  if (!length(out)) out <- setNames(list(), character(0))
  out
}
rel <- function(a, b, floor = 1e-8) max(abs(a - b) / pmax(abs(a), abs(b), floor))

read_case <- function(cs) {
  dat <- read.csv(file.path(here, cs$data))
  for (g in cs$groups) dat[[g]] <- factor(dat[[g]], levels = sort(unique(dat[[g]])))
  if (!is.null(cs$weights)) {             # rate * pupils must give whole passes
    stopifnot(max(abs(dat$rate * dat[[cs$weights]] - dat$passed)) < 1e-9)
  }
  dat
}

# variance components keyed by lme4's group name: "school", "class:school" for an intercept;
# "school:treat" for a slope variance, "school:(Intercept):treat" for the covariance
vc_names <- function(vc) {
  ifelse(is.na(vc$var2),
         ifelse(vc$var1 == "(Intercept)", vc$grp, paste(vc$grp, vc$var1, sep = ":")),
         paste(vc$grp, vc$var1, vc$var2, sep = ":"))
}

# conditional modes: {group: {level: value}} for one term, {group: {level: {term: value}}} for
# several; levels as lme4 labels them ("12:3" = class 12 of school 3)
ranef_json <- function(re, sds) {
  out <- list()
  for (g in names(re)) {
    r <- re[[g]]
    if (ncol(r) == 1) {
      out[[g]] <- vnamed(if (sds) sqrt(attr(r, "postVar")[1, 1, ]) else r[, 1], rownames(r))
    } else {
      pv <- attr(r, "postVar")
      out[[g]] <- lapply(setNames(seq_len(nrow(r)), rownames(r)), function(j)
        vnamed(if (sds) sqrt(diag(pv[, , j])) else unlist(r[j, ]), colnames(r)))
    }
  }
  out
}

# An independent evaluation of the (adaptive Gauss-Hermite / Laplace) log-likelihood for one
# scalar random intercept b_j = theta u_j, u_j ~ N(0, 1): per group a 1-d Newton search for the
# mode of the integrand, then n-node Gauss-Hermite (nodes by Golub-Welsch) centred on the mode
# and scaled by the curvature there; n = 1 is the Laplace approximation. Returns the full
# -2 log-likelihood (binomial coefficients and log y! included).
gh_rule <- function(n) {
  if (n == 1) return(list(x = 0, w = 1))
  J <- matrix(0, n, n)
  for (i in 1:(n - 1)) J[i, i + 1] <- J[i + 1, i] <- sqrt(i)
  e <- eigen(J, symmetric = TRUE)
  list(x = e$values, w = e$vectors[1, ]^2)
}
direct_deviance <- function(y, wt, X, g, beta, theta, family, n) {
  eta0 <- drop(X %*% beta)
  G <- max(g)
  binom <- family == "binomial"
  ll <- function(eta) if (binom) {
    ifelse(wt > 0, dbinom(round(wt * y), round(wt), plogis(eta), log = TRUE), 0)
  } else dpois(y, exp(eta), log = TRUE)
  d1 <- function(eta) if (binom) wt * (y - plogis(eta)) else y - exp(eta)
  d2 <- function(eta) if (binom) -wt * plogis(eta) * (1 - plogis(eta)) else -exp(eta)
  u <- rep(0, G)
  settled <- 0
  for (it in 1:200) {                     # Newton; two more steps once below 1e-10 (rounding)
    eta <- eta0 + theta * u[g]
    step <- (rowsum(theta * d1(eta), g)[, 1] - u) / (rowsum(theta^2 * d2(eta), g)[, 1] - 1)
    u <- u - step
    if (max(abs(step)) < 1e-10) settled <- settled + 1
    if (settled > 2) break
  }
  s <- 1 / sqrt(1 - rowsum(theta^2 * d2(eta0 + theta * u[g]), g)[, 1])
  q <- gh_rule(n)
  lg <- sapply(seq_along(q$x), function(k) {
    uk <- u + s * q$x[k]
    rowsum(ll(eta0 + theta * uk[g]), g)[, 1] + dnorm(uk, log = TRUE) + log(s) -
      dnorm(q$x[k], log = TRUE) + log(q$w[k])
  })
  lg <- matrix(lg, nrow = G)
  m <- apply(lg, 1, max)
  -2 * sum(m + log(rowSums(exp(lg - m))))
}

# -2 log-likelihood of the saturated model (mu = y): lme4 leaves it out of the nAGQ > 1
# deviance (0 for a 0/1 outcome)
saturated_deviance <- function(cs, dat) {
  f <- as.formula(cs$formula)
  y <- dat[[all.vars(f)[1]]]
  if (cs$family == "poisson") return(-2 * sum(dpois(y, y, log = TRUE)))
  wt <- if (is.null(cs$weights)) rep(1, length(y)) else dat[[cs$weights]]
  -2 * sum(dbinom(round(wt * y), round(wt), y, log = TRUE))
}

direct_check <- function(cs, dat, fixef, theta, n) {
  f <- as.formula(cs$formula)
  X <- model.matrix(lme4::nobars(f), dat)
  wt <- if (is.null(cs$weights)) rep(1, nrow(dat)) else dat[[cs$weights]]
  direct_deviance(dat[[all.vars(f)[1]]], wt, X, as.integer(dat$school), fixef[colnames(X)],
                  theta, cs$family, n)
}

# The optimum of direct_deviance itself, by Newton steps (numDeriv) started at a reported fit:
# an independent check of where the optimum of the same objective lies (the inner modes are
# solved to 1e-14, so this objective is smooth to rounding). A theta of exactly 0 stays there.
direct_optimum <- function(cs, dat, beta, theta, n) {
  fn <- function(q) direct_check(cs, dat, setNames(q[-1], names(beta)), q[1], n)
  p <- c(theta, beta)
  free <- if (theta == 0) seq_along(p)[-1] else seq_along(p)
  f <- fn(p)
  for (it in 1:4) {                       # from within ~1e-6 of the optimum, 1-2 steps do it
    g_free <- function(x) { q <- p; q[free] <- x; fn(q) }
    step <- tryCatch(solve(numDeriv::hessian(g_free, p[free]), numDeriv::grad(g_free, p[free])),
                     error = function(e) rep(0, length(free)))
    cand <- p
    cand[free] <- p[free] - step
    if (cand[1] < 0) break
    fc <- fn(cand)
    if (!is.finite(fc) || fc > f + 1e-10) break
    p <- cand
    f <- fc
    if (max(abs(step)) < 1e-10) break
  }
  list(theta = p[1], fixef = setNames(p[-1], names(beta)), deviance = f)
}

# ---------------------------------------------------------------------------------------------
# glmer

fit_glmer <- function(cs, dat, nagq) {
  f <- as.formula(cs$formula)
  fam <- get(cs$family)()
  fit_at <- function(control, start) {
    if (is.null(cs$weights)) {
      glmer(f, data = dat, family = fam, nAGQ = nagq, control = control, start = start)
    } else {
      glmer(f, data = dat, family = fam, nAGQ = nagq, control = control, start = start,
            weights = dat[[cs$weights]])
    }
  }
  # PIRLS to tolPwrss 1e-14; where its step-halving cannot reduce the penalised deviance that
  # far (rounding), 1e-13, then 1e-12. The tolerance used is recorded.
  tol_used <- NA
  fit_one <- function(control, start = NULL) {
    for (tol in c(1e-14, 1e-13, 1e-12)) {
      control$tolPwrss <- tol
      out <- tryCatch(fit_at(control, start), error = function(e) e)
      if (!inherits(out, "error")) {
        tol_used <<- c(tol_used[!is.na(tol_used)], tol)
        return(out)
      }
    }
    stop(out)
  }
  msgs <- character(0)
  fit <- withCallingHandlers(fit_one(ctrl), warning = function(w) {
    msgs <<- c(msgs, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  theta <- getME(fit, "theta")
  beta <- fixef(fit)
  check <- suppressWarnings(suppressMessages(fit_one(
    ctrl_check, start = list(theta = theta * 0.8 + 0.05 * (getME(fit, "lower") == 0),
                             fixef = beta * 0.9 + 0.01))))

  dev_lme4 <- -2 * as.numeric(logLik(fit))
  # lme4 (#161, #567) reports the nAGQ > 1 deviance without the saturated log-likelihood
  sat <- if (nagq > 1) saturated_deviance(cs, dat) else 0
  dev <- dev_lme4 + sat
  dev_check <- -2 * as.numeric(logLik(check)) + sat
  # the deviance function evaluated afresh at the reported parameters
  ctrl_fit <- ctrl
  ctrl_fit$tolPwrss <- tol_used[1]
  dfun <- update(fit, devFunOnly = TRUE, control = ctrl_fit, start = NULL)
  p_opt <- c(theta, beta)
  dev_fresh <- dfun(p_opt) + sat
  # numerical gradient (Richardson) of the deviance in the parameters not on a bound
  free <- which(!(c(getME(fit, "lower"), rep(-Inf, length(beta))) == 0 & p_opt == 0))
  grad <- numDeriv::grad(function(x) { q <- p_opt; q[free] <- x; dfun(q) }, p_opt[free])
  # a theta at its bound 0 is compared absolutely and apart (theta_at_bound)
  bound <- getME(fit, "lower") == 0 & theta == 0
  th_check <- getME(check, "theta")
  diffs <- c(fixef = rel(beta, fixef(check)),
             theta = if (all(bound)) 0 else rel(theta[!bound], th_check[!bound]),
             deviance = rel(dev, dev_check))
  bound_diff <- if (any(bound)) max(abs(th_check[bound])) else 0
  vc <- as.data.frame(VarCorr(fit))
  se <- sqrt(diag(as.matrix(vcov(fit))))                       # as summary() prints them
  # (vcov warns that the two differ by > 1e-4: they are different quantities, see README)
  se_cond <- sqrt(diag(as.matrix(suppressWarnings(vcov(fit, use.hessian = FALSE)))))
  list(
    fixef = vnamed(beta),
    se = vnamed(se, names(beta)),
    se_conditional = vnamed(se_cond, names(beta)),
    deviance = v(dev),
    deviance_lme4 = v(dev_lme4),
    theta = vlist(theta),
    theta_names = as.list(names(theta)),
    varcomp = vnamed(vc$vcov, vc_names(vc)),
    ranef = ranef_json(ranef(fit, condVar = TRUE), sds = FALSE),
    ranef_sd = ranef_json(ranef(fit, condVar = TRUE), sds = TRUE),
    singular = isSingular(fit, tol = 1e-4),
    optimizer_converged = fit@optinfo$conv$opt == 0 && bound_diff < 1e-6,
    converged = NA,
    check_max_rel_diff = v(max(diffs)),
    check_rel_diffs = vnamed(diffs),
    check_abs_diff_theta_at_bound = v(bound_diff),
    check_deviance_fresh_minus_reported = v(dev_fresh - dev),
    max_abs_gradient = v(max(abs(grad))),
    optimizer_message = fit@optinfo$message,
    tolPwrss = tol_used[1],
    tolPwrss_check = tol_used[2],
    lme4_messages = as.list(c(msgs, fit@optinfo$conv$lme4$messages)),
    fit = fit,                            # these two are dropped before writing
    raw = list(fixef = beta, theta = theta, deviance = dev)
  )
}

# ---------------------------------------------------------------------------------------------
# glmmTMB (Laplace; theta converted to lme4's convention: the lower Cholesky factor of each
# term's covariance, column by column, terms in the order of the glmer fit)

# Newton steps on glmmTMB's outer parameters with its exact (automatic-differentiation)
# gradient and a Richardson-extrapolated Jacobian of that gradient; the fitted object is then
# brought to the polished parameters (fixef, VarCorr, ranef, logLik and vcov read them there).
polish_tmb <- function(fit) {
  obj <- fit$obj
  par <- fit$fit$par
  f <- obj$fn(par)
  steps <- 0L
  for (it in 1:20) {
    g <- as.numeric(obj$gr(par))
    h <- numDeriv::jacobian(function(p) as.numeric(obj$gr(p)), par)
    step <- tryCatch(solve((h + t(h)) / 2, g), error = function(e) rep(0, length(par)))
    cand <- par - step
    fc <- obj$fn(cand)
    if (!is.finite(fc) || fc > f + 1e-11) break
    par <- cand
    f <- fc
    steps <- steps + 1L
    if (max(abs(step)) < 1e-13) break
  }
  f <- obj$fn(par)                          # leaves the inner (random-effect) modes at par
  fit$fit$par <- par
  fit$fit$objective <- f
  fit$fit$parfull <- obj$env$last.par
  obj$env$last.par.best <- obj$env$last.par
  fit$sdr <- TMB::sdreport(obj, par.fixed = par)
  list(fit = fit, steps = steps, max_abs_gradient = max(abs(obj$gr(par))))
}

fit_tmb <- function(cs, dat, ref_fit) {
  f <- as.formula(cs$formula)
  fam <- get(cs$family)()
  msgs <- character(0)
  dat$w_ <- if (is.null(cs$weights)) 1 else dat[[cs$weights]]
  fit <- withCallingHandlers(
    glmmTMB(f, data = dat, family = fam, control = tmb_ctrl, weights = w_),
    warning = function(w) {
      msgs <<- c(msgs, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  conv_nlminb <- fit$fit$convergence
  beta_nlminb <- fixef(fit)$cond
  pol <- polish_tmb(fit)
  fit <- pol$fit
  vcs <- VarCorr(fit)$cond
  cn <- getME(ref_fit, "cnms")
  theta <- unlist(lapply(seq_along(cn), function(i) {
    s <- as.matrix(vcs[[names(cn)[i]]])[cn[[i]], cn[[i]], drop = FALSE]
    l <- t(chol(s))
    l[lower.tri(l, diag = TRUE)]
  }))
  names(theta) <- names(getME(ref_fit, "theta"))
  beta <- fixef(fit)$cond
  dev <- -2 * as.numeric(logLik(fit))
  # cross-check against the polished glmer Laplace fit (same approximation, other software)
  diffs <- c(fixef = rel(beta, fixef(ref_fit)),
             theta = max(abs(theta - getME(ref_fit, "theta")) / pmax(abs(theta), 1e-4)),
             deviance = rel(dev, -2 * as.numeric(logLik(ref_fit))))
  varcomp <- list()
  for (g in names(vcs)) {
    s <- as.matrix(vcs[[g]])
    for (i in seq_len(nrow(s))) for (j in seq_len(i)) {
      nm <- if (i == j) {
        if (rownames(s)[i] == "(Intercept)") g else paste(g, rownames(s)[i], sep = ":")
      } else paste(g, rownames(s)[j], rownames(s)[i], sep = ":")
      varcomp[[nm]] <- v(s[i, j])
    }
  }
  re <- ranef(fit)$cond
  rj <- list()
  for (g in names(re)) {
    r <- re[[g]]
    rj[[g]] <- if (ncol(r) == 1) vnamed(r[, 1], rownames(r)) else
      lapply(setNames(seq_len(nrow(r)), rownames(r)), function(j) vnamed(unlist(r[j, ]),
                                                                         colnames(r)))
  }
  list(
    fixef = vnamed(beta),
    se = vnamed(sqrt(diag(vcov(fit)$cond)), names(beta)),
    deviance = v(dev),
    theta = vlist(theta),
    theta_names = as.list(names(theta)),
    varcomp = varcomp,
    ranef = rj,
    # exact gradient of -log-likelihood after the Newton polish
    converged = pol$max_abs_gradient < 1e-6,
    check_max_rel_diff = v(max(diffs)),   # against the glmer Laplace fit (information)
    check_rel_diffs = vnamed(diffs),
    max_abs_gradient = v(pol$max_abs_gradient),
    newton_steps = pol$steps,
    nlminb_convergence = conv_nlminb,
    nlminb_fixef_max_rel_diff = v(rel(beta, beta_nlminb)),
    glmmTMB_messages = as.list(msgs),
    raw = list(fixef = beta, theta = theta, deviance = dev)
  )
}

# ---------------------------------------------------------------------------------------------

fit_case <- function(cs) {
  dat <- read_case(cs)
  t0 <- proc.time()[["elapsed"]]
  fits <- list(laplace = fit_glmer(cs, dat, 1L))
  if (cs$agq) {
    fits$agq5 <- fit_glmer(cs, dat, 5L)
    fits$agq25 <- fit_glmer(cs, dat, 25L)
  }
  if (cs$tmb) {
    fits$glmmTMB <- fit_tmb(cs, dat, fits$laplace$fit)
    fits$laplace$crosscheck_glmmTMB_max_rel_diff <- fits$glmmTMB$check_max_rel_diff
  }
  if (cs$agq) {                           # one scalar random intercept: direct evaluation
    for (k in names(fits)) {
      n <- c(laplace = 1, agq5 = 5, agq25 = 25, glmmTMB = 1)[[k]]
      raw <- fits[[k]]$raw
      d <- direct_check(cs, dat, raw$fixef, raw$theta, n)
      fits[[k]]$check_direct_deviance_diff <- v(raw$deviance - d)
      if (k != "glmmTMB") {
        o <- direct_optimum(cs, dat, raw$fixef, raw$theta, n)
        dd <- c(fixef = rel(raw$fixef, o$fixef),
                theta = if (raw$theta == 0) abs(o$theta) else rel(raw$theta, o$theta),
                deviance = rel(raw$deviance, o$deviance))
        fits[[k]]$crosscheck_direct_max_rel_diff <- v(max(dd))
      }
    }
  }
  for (k in names(fits)) {               # converged: see README ("Convergence")
    ft <- fits[[k]]
    if (k != "glmmTMB") {
      best <- min(as.numeric(unclass(ft$check_max_rel_diff)),
                  as.numeric(unclass(ft$crosscheck_glmmTMB_max_rel_diff %||% "Inf")),
                  as.numeric(unclass(fits[[k]]$crosscheck_direct_max_rel_diff %||% "Inf")))
      fits[[k]]$converged <- ft$optimizer_converged && best <= 1e-6
      fits[[k]]$verified_1e7 <- ft$optimizer_converged && best <= 1e-7
    }
    fits[[k]]$fit <- NULL
    fits[[k]]$raw <- NULL
  }
  f1 <- suppressWarnings(suppressMessages(glmer(
    as.formula(cs$formula), data = dat, family = get(cs$family)(),
    weights = if (is.null(cs$weights)) NULL else dat[[cs$weights]], nAGQ = 0L)))
  cat(sprintf("%-22s %6.1f s\n", cs$name, proc.time()[["elapsed"]] - t0))
  list(
    formula = cs$formula, family = cs$family, data = cs$data,
    weights = if (is.null(cs$weights)) NULL else cs$weights,
    purpose = cs$purpose,
    n_obs = nrow(dat),
    n_groups = as.list(ngrps(f1)),
    fits = fits
  )
}

only <- Sys.getenv("GLMER_CASES")       # e.g. GLMER_CASES=star,slope for a quick look
if (nzchar(only)) cases <- cases[sapply(cases, `[[`, "name") %in% strsplit(only, ",")[[1]]]
results <- lapply(cases, fit_case)
names(results) <- sapply(cases, `[[`, "name")

json <- toJSON(results, auto_unbox = TRUE, null = "null", json_verbatim = TRUE, pretty = TRUE,
               digits = NA)
writeLines(json, file.path(here, "reference.json"))
writeLines(capture.output(sessionInfo()), file.path(here, "sessionInfo.txt"))

for (nm in names(results)) {
  r <- results[[nm]]
  for (fn in names(r$fits)) {
    ft <- r$fits[[fn]]
    cat(sprintf("%-22s %-8s dev=%-22s conv=%-5s check=%-10s %s\n", nm, fn,
                unclass(ft$deviance), ft$converged, sprintf("%.1e", as.numeric(ft$check_max_rel_diff)),
                paste(unlist(c(ft$lme4_messages, ft$glmmTMB_messages)), collapse = " | ")))
  }
}
