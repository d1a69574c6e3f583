# Reference values for the trial designs and the multilevel DiD with a pass/fail outcome
# (family = "binomial"): R's glm (pupil-randomised trial), lme4::glmer and glmmTMB (cluster and
# multisite trials, multilevel DiD), and the marginal percentage-point difference with its
# delta-method standard error computed here by independent code.
#
#   Rscript tests/reference/glmer_trials/make_reference.R
#
# Reads data/*.csv (written by make_data.py) and writes reference.json and sessionInfo.txt next
# to this script. See README.md for the cases, the layout and the tolerances.
#
# glmer fits use tests/reference/glmer/make_reference.R's settings: bobyqa with a tiny final
# trust radius and a Newton polish in both of glmer's stages, PIRLS to tolPwrss = 1e-14
# (1e-13, 1e-12 where its step-halving cannot get that far). glmmTMB fits (the exact Laplace
# optimum, automatic-differentiation gradients) are polished by Newton steps on that gradient;
# their standard errors come from the exact Hessian (sdreport).

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."

# ------------------------------------------------------------------------------ optimisers
# (as tests/reference/glmer/make_reference.R)
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
      if (max(abs(step)) < 1e-12) break
    }
  }
  if (f > o$fval + 1e-9) p <- o$par
  f <- fn(p)
  list(par = p, fval = f, value = f, conv = 0L, feval = o$feval, message = "polished bobyqa")
}

ctrl <- glmerControl(optimizer = list(polished_bobyqa, polished_bobyqa), tolPwrss = 1e-14,
                     check.conv.singular = .makeCC(action = "ignore", tol = 1e-4))
tmb_ctrl <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-12))

fit_glmer <- function(formula, dat) {
  for (tol in c(1e-14, 1e-13, 1e-12)) {
    ctrl$tolPwrss <- tol
    out <- tryCatch(glmer(formula, data = dat, family = binomial, control = ctrl),
                    error = function(e) e)
    if (!inherits(out, "error")) return(list(fit = out, tolPwrss = tol))
  }
  stop(out)
}

polish_tmb <- function(fit) {
  obj <- fit$obj
  par <- fit$fit$par
  f <- obj$fn(par)
  for (it in 1:20) {
    g <- as.numeric(obj$gr(par))
    h <- numDeriv::jacobian(function(p) as.numeric(obj$gr(p)), par)
    step <- tryCatch(solve((h + t(h)) / 2, g), error = function(e) rep(0, length(par)))
    cand <- par - step
    fc <- obj$fn(cand)
    if (!is.finite(fc) || fc > f + 1e-11) break
    par <- cand
    f <- fc
    if (max(abs(step)) < 1e-13) break
  }
  f <- obj$fn(par)
  fit$fit$par <- par
  fit$fit$objective <- f
  fit$fit$parfull <- obj$env$last.par
  obj$env$last.par.best <- obj$env$last.par
  fit$sdr <- TMB::sdreport(obj, par.fixed = par)
  list(fit = fit, max_abs_gradient = max(abs(obj$gr(par))))
}

# ------------------------------------------------------------------------------ marginal effect
# Probabilists' Gauss-Hermite rule by Golub-Welsch: sum_k w_k f(x_k) ~ E f(Z), Z ~ N(0, 1).
gh_rule <- function(n) {
  J <- matrix(0, n, n)
  for (i in 1:(n - 1)) J[i, i + 1] <- J[i + 1, i] <- sqrt(i)
  e <- eigen(J, symmetric = TRUE)
  list(x = e$values, w = e$vectors[1, ]^2)
}

# Average predicted probability over the rows of X with the treatment column set to `t`,
# integrating over a N(0, v) latent random effect, and its gradient in beta.
average_probability <- function(X, beta, column, t, v, nodes) {
  Xt <- X
  Xt[, column] <- t
  eta <- drop(Xt %*% beta)
  q <- if (v > 0) gh_rule(nodes) else list(x = 0, w = 1)
  mu <- plogis(outer(eta, sqrt(v) * q$x, "+"))          # rows x nodes
  p <- mean(mu %*% q$w)
  g <- colMeans(Xt * drop((mu * (1 - mu)) %*% q$w))
  list(p = p, gradient = g)
}

# The population-averaged difference in proportions (treatment 1 against 0) with its
# delta-method standard error; v1, v0: latent variances with the treatment at 1 and at 0.
marginal <- function(X, beta, V, column, v1, v0, nodes = 80) {
  a <- average_probability(X, beta, column, 1, v1, nodes)
  b <- average_probability(X, beta, column, 0, v0, nodes)
  g <- a$gradient - b$gradient
  list(estimate = a$p - b$p, std_error = sqrt(drop(t(g) %*% V %*% g)),
       p_treated = a$p, p_untreated = b$p)
}

wald <- function(b, se) {
  z <- qnorm(0.975)
  list(estimate = b, std_error = se, ci_lower = b - z * se, ci_upper = b + z * se,
       odds_ratio = exp(b), odds_ratio_lower = exp(b - z * se), odds_ratio_upper = exp(b + z * se))
}

marginal_entry <- function(m) {
  z <- qnorm(0.975)
  c(m, list(ci_lower = m$estimate - z * m$std_error, ci_upper = m$estimate + z * m$std_error))
}

rel <- function(a, b) max(abs(a - b) / pmax(abs(a), abs(b), 1e-8))

# ------------------------------------------------------------------------------ cases
read <- function(name) read.csv(file.path(here, "data", name))

mixed_case <- function(name, file, formula, treatment, rows = NULL, slope = FALSE) {
  dat <- read(file)
  f <- as.formula(formula)
  g <- fit_glmer(f, dat)
  fit <- g$fit
  tmb <- polish_tmb(glmmTMB(f, data = dat, family = binomial, control = tmb_ctrl))
  tfit <- tmb$fit
  X <- model.matrix(fit)
  if (!is.null(rows)) X <- X[rows(dat), , drop = FALSE]
  one <- function(beta, V, vc) {
    if (slope) {
      s <- vc[[1]]
      v0 <- s[1, 1]
      v1 <- s[1, 1] + 2 * s[1, 2] + s[2, 2]
    } else {
      v0 <- v1 <- sum(sapply(vc, function(s) s[1, 1]))
    }
    list(variance_untreated = v0, variance_treated = v1,
         marginal = marginal_entry(marginal(X, beta, V, treatment, v1, v0)),
         marginal_40_nodes = marginal(X, beta, V, treatment, v1, v0, nodes = 40)$estimate)
  }
  vc_glmer <- lapply(VarCorr(fit), function(s) as.matrix(s))
  vc_tmb <- lapply(VarCorr(tfit)$cond, function(s) as.matrix(s))
  beta_g <- fixef(fit)
  beta_t <- fixef(tfit)$cond
  V_t <- as.matrix(vcov(tfit)$cond)
  V_g <- as.matrix(vcov(fit))
  out_g <- one(beta_g, V_g, vc_glmer)
  out_t <- one(beta_t, V_t, vc_tmb)
  flat <- function(vc) {
    out <- list()
    for (g in names(vc)) {
      s <- vc[[g]]
      for (i in seq_len(nrow(s))) for (j in seq_len(i)) {
        nm <- if (i == j) {
          if (rownames(s)[i] == "(Intercept)") g else paste(g, rownames(s)[i], sep = ":")
        } else paste(g, rownames(s)[j], rownames(s)[i], sep = ":")
        out[[nm]] <- s[i, j]
      }
    }
    out
  }
  list(
    formula = formula, data = paste0("data/", file), treatment = treatment,
    n_obs = nrow(dat), marginal_rows = nrow(X),
    glmer = c(list(
      fixef = as.list(beta_g), se = as.list(sqrt(diag(V_g))),
      varcomp = flat(vc_glmer), deviance = -2 * as.numeric(logLik(fit)),
      treatment_wald = wald(beta_g[[treatment]], sqrt(V_g[treatment, treatment])),
      tolPwrss = g$tolPwrss, singular = isSingular(fit, tol = 1e-4)), out_g),
    glmmTMB = c(list(
      fixef = as.list(beta_t), se = as.list(sqrt(diag(V_t))),
      varcomp = flat(vc_tmb), deviance = -2 * as.numeric(logLik(tfit)),
      treatment_wald = wald(beta_t[[treatment]], sqrt(V_t[treatment, treatment])),
      max_abs_gradient = tmb$max_abs_gradient), out_t),
    glmer_vs_glmmTMB = list(fixef = rel(beta_g, beta_t), se = rel(sqrt(diag(V_g)), sqrt(diag(V_t))),
                            marginal = rel(out_g$marginal$estimate, out_t$marginal$estimate),
                            marginal_se = rel(out_g$marginal$std_error, out_t$marginal$std_error))
  )
}

simple_case <- function() {
  dat <- read("simple.csv")
  formula <- "passed ~ programme + prior"
  fit <- glm(as.formula(formula), data = dat, family = binomial,
             control = glm.control(epsilon = 1e-15, maxit = 100))
  X <- model.matrix(fit)
  beta <- coef(fit)
  V <- vcov(fit)
  list(
    formula = formula, data = "data/simple.csv", treatment = "programme", n_obs = nrow(dat),
    glm = list(
      fixef = as.list(beta), se = as.list(sqrt(diag(V))), deviance = deviance(fit),
      converged = fit$converged, iterations = fit$iter,
      treatment_wald = wald(beta[["programme"]], sqrt(V["programme", "programme"])),
      marginal = marginal_entry(marginal(X, beta, V, "programme", 0, 0)))
  )
}

did_rows <- function(dat) dat$exposed == 1
did_data <- function() {
  dat <- read("did.csv")
  for (y in c(2017, 2018, 2020)) dat[[paste0("year_", y)]] <- as.numeric(dat$year == y)
  dat
}

set.seed(1)
reference <- list(
  simple = simple_case(),
  cluster = mixed_case("cluster", "cluster.csv",
                       "passed ~ programme + prior + fsm + (1 | school_id)", "programme"),
  multisite = mixed_case("multisite", "multisite.csv",
                         "passed ~ programme + prior + (1 + programme | school)", "programme",
                         slope = TRUE),
  all_pass_school = mixed_case("all_pass_school", "all_pass_school.csv",
                               "passed ~ programme + prior + (1 | school)", "programme")
)
# The multilevel DiD: year dummies named as MultilevelDiD names them, school-year intercepts
# nested in school (period_effects = TRUE); the marginal effect averages over exposed records.
local({
  dat <- did_data()
  tmp <- file.path(here, "data", ".did_with_dummies.csv")
  write.csv(dat, tmp, row.names = FALSE)
  on.exit(unlink(tmp))
  reference$did <<- mixed_case(
    "did", ".did_with_dummies.csv",
    "passed ~ treated + year_2017 + year_2018 + year_2020 + exposed + prior + (1 | school/year)",
    "exposed", rows = did_rows)
  reference$did$data <<- "data/did.csv"
})

writeLines(toJSON(reference, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "reference.json"))
writeLines(capture.output(sessionInfo()), file.path(here, "sessionInfo.txt"))
cat("done\n")
