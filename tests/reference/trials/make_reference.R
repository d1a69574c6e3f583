# Reference values for cpdimpact's trial analyses (SimpleTrial, ClusterTrial, MultisiteTrial),
# reproducing the computations of the R package eefAnalytics 1.1.5 (srtFREQ, crtFREQ, mstFREQ)
# with lme4 / lmerTest directly (eefAnalytics itself cannot be installed here: CRAN is out of
# reach). The effect-size formulas below are written from Hedges (2007) as eefAnalytics applies
# them (see README.md in this folder for each formula and where it comes from).
#
#   Rscript tests/reference/trials/make_reference.R
#
# Reads ../multilevel/crtData.csv and ../multilevel/mstData.csv (the package's data sets,
# unchanged) and writes reference.json and sessionInfo.txt next to this script.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."
data_dir <- file.path(here, "..", "multilevel")

# ----------------------------------------------------------------------------- optimiser
# bobyqa with a tiny final trust radius, a covariance parameter left just above its bound 0
# set to 0 when that does not raise the criterion, then Newton steps (numDeriv) on the others:
# the same tight optimiser as tests/reference/multilevel/make_reference.R, so that values are
# good to ~1e-8 rather than lme4's default ~1e-6.
tight <- function(par, fn, lower, upper, control = list()) {
  o <- minqa::bobyqa(par, fn, lower, upper,
                     control = list(maxfun = 1e5, rhobeg = 0.01, rhoend = 1e-10))
  p <- o$par
  at_bound <- lower == 0 & p < 1e-4
  for (i in which(at_bound)) {
    q <- p
    q[i] <- 0
    if (fn(q) <= o$fval + 1e-9) p <- q else at_bound[i] <- FALSE
  }
  free <- which(!(at_bound & p == 0))
  if (length(free)) {
    sub_fn <- function(x) { q <- p; q[free] <- x; fn(q) }
    for (it in 1:20) {
      step <- solve(numDeriv::hessian(sub_fn, p[free]), numDeriv::grad(sub_fn, p[free]))
      cand <- p
      cand[free] <- pmax(p[free] - step, lower[free])
      if (fn(cand) > fn(p) + 1e-10) break
      p <- cand
      if (max(abs(step)) < 1e-12) break
    }
  }
  fval <- fn(p)
  if (fval > o$fval + 1e-9) { p <- o$par; fval <- o$fval }
  list(par = p, fval = fval, value = fval, conv = 0L, message = "bobyqa + polish")
}
ctrl <- lmerControl(optimizer = tight, check.conv.singular = "ignore")

z <- qnorm(0.975)

# ----------------------------------------------------------------------------- profile CI
# Profile-likelihood interval of one fixed effect, as lme4's confint(method = "profile"):
# lme4 refits the model by ML and profiles the ML deviance, with the effect held at b through
# an offset and the other parameters re-optimised; the interval is where the signed root
# sign(b - b_ML) * sqrt(dev(b) - dev_ML) equals -/+ qnorm(0.975). lme4 interpolates the root
# with splines through a few profile points; here it is solved exactly (uniroot), and every
# profile fit is started from several points, keeping the best, because the multisite model's
# fit is singular and a single start can stop at a worse local optimum.
profile_ci <- function(formula_wo, term, data, random, starts) {
  full_f <- as.formula(paste(formula_wo, "+", term, "+", random))
  full <- lmer(full_f, data = data, REML = FALSE, control = ctrl)
  base <- deviance(full)
  est <- unname(fixef(full)[term])
  se <- unname(sqrt(diag(as.matrix(vcov(full))))[names(fixef(full)) == term])
  prof_f <- as.formula(paste(formula_wo, "+ offset(.off) +", random))
  zeta <- function(b) {
    data$.off <- b * data[[term]]
    best <- Inf
    for (st in c(list(getME(full, "theta")), starts)) {
      m <- lmer(prof_f, data = data, REML = FALSE, control = ctrl, start = list(theta = st))
      best <- min(best, deviance(m))
    }
    sign(b - est) * sqrt(max(0, best - base))
  }
  lower <- uniroot(function(b) zeta(b) + z, c(est - 6 * se, est), tol = 1e-11)$root
  upper <- uniroot(function(b) zeta(b) - z, c(est, est + 6 * se), tol = 1e-11)$root
  list(ml_estimate = est, ml_deviance = base, lower = lower, upper = upper)
}

# ----------------------------------------------------------------------------- effect sizes
# Cluster-randomised trial (Hedges 2007, unequal cluster sizes), as eefAnalytics' crtFREQ.
# As eefAnalytics (whose cluster ids are plain numbers, not factors): only clusters with pupils
# in the arm count, so a multisite school without treated pupils is not a treated cluster.
cluster_sizes <- function(treat, cluster) {
  ids <- as.character(cluster)
  list(t = as.numeric(table(ids[treat == 1])), c = as.numeric(table(ids[treat == 0])))
}
# ntilde: Hedges' (2007) "n-tilde" for unequal cluster sizes.
ntilde <- function(s) {
  Nt <- sum(s$t); Nc <- sum(s$c); N <- Nt + Nc
  Nc * sum(s$t^2) / (Nt * N) + Nt * sum(s$c^2) / (Nc * N)
}
es_within_crt <- function(beta, var_w, icc, s) {
  Nt <- sum(s$t); Nc <- sum(s$c); N <- Nt + Nc; M <- length(s$t) + length(s$c)
  d <- beta / sqrt(var_w)
  v <- N / (Nt * Nc) * (1 + (ntilde(s) - 1) * icc) / (1 - icc) + d^2 / (2 * (N - M))
  c(estimate = d, std_error = sqrt(v), ci_lower = d - z * sqrt(v), ci_upper = d + z * sqrt(v))
}
es_total_crt <- function(beta, var_t, icc, s) {
  Nt <- sum(s$t); Nc <- sum(s$c); N <- Nt + Nc
  mt <- length(s$t); mc <- length(s$c)
  nut <- (Nt^2 - sum(s$t^2)) / (Nt * (mt - 1))      # n_U per arm
  nuc <- (Nc^2 - sum(s$c^2)) / (Nc * (mc - 1))
  correction <- sqrt(1 - icc * ((N - nut * mt - nuc * mc) + nut + nuc - 2) / (N - 2))
  d <- beta / sqrt(var_t) * correction
  B <- nut * (mt - 1) + nuc * (mc - 1)
  A <- (Nt^2 * sum(s$t^2) + sum(s$t^2)^2 - 2 * Nt * sum(s$t^3)) / Nt^2 +
       (Nc^2 * sum(s$c^2) + sum(s$c^2)^2 - 2 * Nc * sum(s$c^3)) / Nc^2
  v <- N / (Nt * Nc) * (1 + (ntilde(s) - 1) * icc) +
       d^2 * ((N - 2) * (1 - icc)^2 + A * icc^2 + 2 * B * icc * (1 - icc)) /
       (2 * (N - 2) * ((N - 2) - icc * (N - 2 - B)))
  c(estimate = d, std_error = sqrt(v), ci_lower = d - z * sqrt(v), ci_upper = d + z * sqrt(v),
    correction = correction)
}
# Multisite trial, conditional model, as eefAnalytics' mstFREQ: the variance of the treatment
# coefficient of a random-slope model with known variances, over sites with both arms
# (harmonic arm sizes), plus the usual d^2 / (2 (N - 2M)) term.
es_mst <- function(beta, var_den, var_w, var_slope, treat, cluster) {
  tab <- table(cluster, treat)
  both <- tab[, "0"] > 0 & tab[, "1"] > 0
  nh <- tab[both, "1"] * tab[both, "0"] / (tab[both, "1"] + tab[both, "0"])
  N <- length(treat); M <- length(unique(cluster))
  d <- beta / sqrt(var_den)
  v <- 1 / sum(var_den / (var_slope + var_w / nh)) + d^2 / (2 * N - 4 * M)
  c(estimate = d, std_error = sqrt(v), ci_lower = d - z * sqrt(v), ci_upper = d + z * sqrt(v))
}

row <- function(model, variance, v) {
  c(list(model = model, variance = variance), as.list(v[c("estimate", "std_error",
                                                             "ci_lower", "ci_upper")]))
}

blups <- function(fit, group) {
  re <- ranef(fit, condVar = TRUE)[[group]]
  pv <- attr(re, "postVar")
  out <- list()
  for (k in seq_len(ncol(re))) {
    term <- if (colnames(re)[k] == "(Intercept)") "Intercept" else colnames(re)[k]
    out[[term]] <- list(ids = as.integer(rownames(re)), estimate = unname(re[, k]),
                        cond_sd = unname(sqrt(pv[k, k, ])))
  }
  out
}

coef_table <- function(fit) {
  co <- summary(fit)$coefficients
  terms <- sub("\\(Intercept\\)", "Intercept", rownames(co))
  out <- lapply(seq_len(nrow(co)), function(i) as.list(co[i, ]))
  names(out) <- terms
  out
}

lme4_profile <- function(fit, term) {
  # what eefAnalytics prints: lme4's spline-interpolated profile interval
  ci <- suppressMessages(confint(fit, term, method = "profile", oldNames = FALSE))
  list(lower = unname(ci[1, 1]), upper = unname(ci[1, 2]))
}

# ============================================================================ crtData
crt <- read.csv(file.path(data_dir, "crtData.csv"))
crt$School <- factor(crt$School, levels = sort(unique(crt$School)))
cond <- lmerTest::lmer(Posttest ~ Intervention + Prettest + (1 | School), data = crt,
                       control = ctrl)
uncond <- lmer(Posttest ~ 1 + (1 | School), data = crt, control = ctrl)
vc <- function(fit) {
  v <- as.data.frame(VarCorr(fit))
  b <- v$vcov[v$grp != "Residual" & is.na(v$var2)][1]
  w <- sigma(fit)^2
  list(between = b, within = w, total = b + w, icc = b / (b + w))
}
vcc <- vc(cond); vcu <- vc(uncond)
beta <- unname(fixef(cond)["Intervention"])
s <- cluster_sizes(crt$Intervention, crt$School)
wt <- summary(cond)$coefficients["Intervention", ]
prof <- profile_ci("Posttest ~ Prettest", "Intervention", crt, "(1 | School)",
                   list(1, 0.3, 0.05))
crt_case <- list(
  name = "crt_cluster", data = "crtData.csv", design = "ClusterTrial",
  formula = "Posttest ~ Intervention + Prettest + (1 | School)",
  n_obs = nrow(crt), n_clusters = nlevels(crt$School),
  n_clusters_per_arm = list(treated = length(s$t), control = length(s$c)),
  n_per_arm = list(treated = sum(s$t), control = sum(s$c)),
  coefficients = coef_table(cond),
  treatment = list(
    estimate = beta, std_error = unname(wt["Std. Error"]), df = unname(wt["df"]),
    satterthwaite_ci = list(lower = beta - qt(0.975, wt["df"]) * wt["Std. Error"],
                            upper = beta + qt(0.975, wt["df"]) * wt["Std. Error"]),
    profile_ci = list(lower = prof$lower, upper = prof$upper),
    profile_ml_estimate = prof$ml_estimate,
    lme4_profile_ci = lme4_profile(cond, "Intervention")
  ),
  variances = list(conditional = vcc, unconditional = vcu),
  effect_sizes = list(
    row("conditional", "within", es_within_crt(beta, vcc$within, vcc$icc, s)),
    row("conditional", "total", es_total_crt(beta, vcc$total, vcc$icc, s)),
    row("unconditional", "within", es_within_crt(beta, vcu$within, vcu$icc, s)),
    row("unconditional", "total", es_total_crt(beta, vcu$total, vcu$icc, s))
  ),
  total_corrections = list(
    conditional = unname(es_total_crt(beta, vcc$total, vcc$icc, s)["correction"]),
    unconditional = unname(es_total_crt(beta, vcu$total, vcu$icc, s)["correction"])
  ),
  headline = list(
    estimate = beta / sqrt(vcu$total), sd = sqrt(vcu$total),
    profile_ci = list(lower = prof$lower / sqrt(vcu$total), upper = prof$upper / sqrt(vcu$total))
  ),
  school_effects = blups(cond, "School")
)

# ============================================================================ mstData
mst <- read.csv(file.path(data_dir, "mstData.csv"))
mst$School <- factor(mst$School, levels = sort(unique(mst$School)))

# --- simple (pupil-randomised) analysis, as srtFREQ: OLS; Hedges' g with J = 1 - 3/(4 df - 1)
simple_case <- function(dat, name, dname) {
  fit <- lm(Posttest ~ Intervention + Prettest, data = dat)
  beta <- unname(coef(fit)["Intervention"])
  ci <- confint(fit)["Intervention", ]
  nt <- sum(dat$Intervention == 1); nc <- sum(dat$Intervention == 0)
  j <- 1 - 3 / (4 * (nt + nc - 2) - 1)
  sds <- c(conditional = summary(fit)$sigma, unconditional = sd(dat$Posttest))
  es <- lapply(names(sds), function(m) {
    d <- beta / sds[[m]]
    se_d <- sqrt((nt + nc) / (nt * nc) + d^2 / (2 * (nt + nc)))
    c(list(model = m, variance = "total"),
      list(estimate = j * d, std_error = j * se_d, ci_lower = j * (d - z * se_d),
           ci_upper = j * (d + z * se_d)))
  })
  list(
    name = name, data = dname, design = "SimpleTrial",
    formula = "Posttest ~ Intervention + Prettest (lm)",
    n_obs = nrow(dat), n_per_arm = list(treated = nt, control = nc),
    coefficients = coef_table(fit),
    treatment = list(estimate = beta, std_error = summary(fit)$coefficients["Intervention", 2],
                     df = fit$df.residual, t_ci = list(lower = ci[[1]], upper = ci[[2]])),
    variances = list(conditional = list(within = summary(fit)$sigma^2),
                     unconditional = list(within = var(dat$Posttest))),
    hedges_j = j,
    effect_sizes = es,
    headline = list(estimate = beta / sd(dat$Posttest), sd = sd(dat$Posttest),
                    t_ci = list(lower = ci[[1]] / sd(dat$Posttest),
                                upper = ci[[2]] / sd(dat$Posttest)))
  )
}
mst_simple <- simple_case(mst, "mst_simple", "mstData.csv")
crt_simple <- simple_case(crt, "crt_simple", "crtData.csv")

# --- multisite analysis, as mstFREQ: random intercept and random treatment slope by school
mcond <- lmerTest::lmer(Posttest ~ Intervention + Prettest + (1 + Intervention | School),
                        data = mst, control = ctrl)
muncond <- lmer(Posttest ~ 1 + (1 | School), data = mst, control = ctrl)
mv <- as.matrix(VarCorr(mcond)$School)
var_w <- sigma(mcond)^2
p_t <- mean(mst$Intervention == 1)
# eefAnalytics' conditional total: intercept + residual + the share of treated pupils times
# (slope variance + 2 intercept-slope covariance), i.e. the variance averaged over pupils.
var_tt <- mv[1, 1] + var_w + p_t * (mv[2, 2] + 2 * mv[1, 2])
mvu <- vc(muncond)
mbeta <- unname(fixef(mcond)["Intervention"])
mwt <- summary(mcond)$coefficients["Intervention", ]
mprof <- profile_ci("Posttest ~ Prettest", "Intervention", mst, "(1 + Intervention | School)",
                    list(c(1, 0, 1), c(0.5, 0.5, 0.1), c(0.3, 0.3, 0), c(0.8, -0.3, 0.4)))
ms <- cluster_sizes(mst$Intervention, mst$School)
tab <- table(mst$School, mst$Intervention)
mst_case <- list(
  name = "mst_multisite", data = "mstData.csv", design = "MultisiteTrial",
  formula = "Posttest ~ Intervention + Prettest + (1 + Intervention | School)",
  n_obs = nrow(mst), n_clusters = nlevels(mst$School),
  n_single_arm_sites = sum(tab[, "0"] == 0 | tab[, "1"] == 0),
  singular = isSingular(mcond),
  coefficients = coef_table(mcond),
  treatment = list(
    estimate = mbeta, std_error = unname(mwt["Std. Error"]), df = unname(mwt["df"]),
    satterthwaite_ci = list(lower = mbeta - qt(0.975, mwt["df"]) * mwt["Std. Error"],
                            upper = mbeta + qt(0.975, mwt["df"]) * mwt["Std. Error"]),
    profile_ci = list(lower = mprof$lower, upper = mprof$upper),
    profile_ml_estimate = mprof$ml_estimate
  ),
  variances = list(
    conditional = list(between = mv[1, 1], slope = mv[2, 2], intercept_slope = mv[1, 2],
                       within = var_w, total = var_tt, share_treated = p_t,
                       icc = (var_tt - var_w) / var_tt,
                       icc_eefanalytics = sum(mv) / var_tt),
    unconditional = mvu
  ),
  effect_sizes = list(
    row("conditional", "within", es_mst(mbeta, var_w, var_w, mv[2, 2], mst$Intervention,
                                        mst$School)),
    row("conditional", "total", es_mst(mbeta, var_tt, var_w, mv[2, 2], mst$Intervention,
                                       mst$School)),
    # eefAnalytics applies the cluster-trial formulas to the unconditional model, with each
    # school's treated and control pupils counted as separate clusters.
    row("unconditional", "within", es_within_crt(mbeta, mvu$within, mvu$icc, ms)),
    row("unconditional", "total", es_total_crt(mbeta, mvu$total, mvu$icc, ms))
  ),
  headline = list(
    estimate = mbeta / sqrt(mvu$total), sd = sqrt(mvu$total),
    profile_ci = list(lower = mprof$lower / sqrt(mvu$total),
                      upper = mprof$upper / sqrt(mvu$total))
  ),
  school_effects = blups(mcond, "School")
)

# lme4's own (spline) profile interval with eefAnalytics' exact call: data sorted by school and
# arm, the arm as a factor. With the rows in file order lme4's profiler stops at a worse local
# optimum for this singular fit and gives [1.08, 6.19]; both are recorded.
mst_sorted <- mst[order(mst$School, mst$Intervention), ]
trt <- factor(mst_sorted$Intervention)
X <- model.matrix(~ trt + Prettest, mst_sorted)
yy <- mst_sorted$Posttest
cl <- mst_sorted$School
eef_fit <- suppressMessages(lmer(yy ~ X - 1 + (1 + trt | cl)))
mst_case$treatment$lme4_profile_ci_sorted <- lme4_profile(eef_fit, "Xtrt1")
mst_case$treatment$lme4_profile_ci_file_order <- lme4_profile(
  suppressMessages(lmer(Posttest ~ Intervention + Prettest + (1 + Intervention | School),
                        data = mst)), "Intervention")

out <- list(
  description = paste(
    "eefAnalytics 1.1.5 computations (srtFREQ, crtFREQ, mstFREQ) reproduced with lme4/lmerTest;",
    "unrounded; intervals use qnorm(0.975) where eefAnalytics uses 1.96."),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  Matrix = as.character(packageVersion("Matrix")),
                  minqa = as.character(packageVersion("minqa"))),
  cases = list(crt_cluster = crt_case, mst_multisite = mst_case, mst_simple = mst_simple,
               crt_simple = crt_simple)
)
write_json(out, file.path(here, "reference.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE)
writeLines(capture.output(sessionInfo()), file.path(here, "sessionInfo.txt"))
