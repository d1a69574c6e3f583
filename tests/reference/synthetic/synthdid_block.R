# Reference for a block of treated areas (cpdimpact SyntheticDiD averages them, as synthdid):
# Prop 99 data with Utah also marked treated from 1989 alongside California.
# synthdid 0.0.9, R 4.2.2. Run from this folder: R_LIBS=<lib> Rscript synthdid_block.R
# Writes synthdid_block.csv (method, estimate) and synthdid_block_weights.csv.
suppressMessages(library(synthdid))
panel <- read.csv("california_prop99.csv", sep = ";")
panel$treated[panel$State == "Utah" & panel$Year >= 1989] <- 1
setup <- panel.matrices(panel, unit = "State", time = "Year", outcome = "PacksPerCapita",
                        treatment = "treated")
fits <- list(sdid = synthdid_estimate(setup$Y, setup$N0, setup$T0),
             sc = sc_estimate(setup$Y, setup$N0, setup$T0),
             did = did_estimate(setup$Y, setup$N0, setup$T0))
write.csv(data.frame(method = names(fits), estimate = sapply(fits, c)), "synthdid_block.csv",
          row.names = FALSE)
w <- do.call(rbind, lapply(names(fits), function(m) {
  wt <- attr(fits[[m]], "weights")
  rbind(data.frame(method = m, kind = "omega", name = rownames(setup$Y)[1:setup$N0], weight = wt$omega),
        data.frame(method = m, kind = "lambda", name = colnames(setup$Y)[1:setup$T0], weight = wt$lambda))
}))
write.csv(w, "synthdid_block_weights.csv", row.names = FALSE)
print(sapply(fits, c))
