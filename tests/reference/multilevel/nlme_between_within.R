# Between-within ("containment") denominator degrees of freedom from nlme::lme, the reference
# for cpdimpact's df_method = "between_within". Run from this folder:
#   Rscript nlme_between_within.R
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
cases <- list(
  list(name = "two_level_reml", data = "two_level.csv", fixed = y ~ x1 + x2 + treat,
       random = ~ 1 | school),
  list(name = "three_level_reml", data = "three_level.csv", fixed = y ~ prior + fsm + treat,
       random = ~ 1 | school/teacher),
  list(name = "four_level_reml", data = "four_level.csv", fixed = y ~ x,
       random = ~ 1 | area/school/teacher),
  list(name = "crt_conditional", data = "crtData.csv", fixed = Posttest ~ Intervention + Prettest,
       random = ~ 1 | School)
)
out <- list()
for (case in cases) {
  d <- read.csv(case$data)
  fit <- lme(case$fixed, random = case$random, data = d, method = "REML")
  tt <- summary(fit)$tTable
  df <- as.list(tt[, "DF"])
  names(df)[names(df) == "(Intercept)"] <- "Intercept"
  out[[case$name]] <- list(between_within_df = df)
}
out$versions <- list(R = R.version.string, nlme = as.character(packageVersion("nlme")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "nlme_between_within.json")
