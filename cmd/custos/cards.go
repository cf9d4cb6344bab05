package main

import (
	"custos/ceremony"
)

// parseCardSpecs turns --card NAME=SERIAL flags into a card writer.
// TODO: wire package smartcard once its API is settled (issue 3).
func parseCardSpecs(specs, names []string) (ceremony.CardWriter, error) {
	if len(specs) > 0 {
		return nil, usagef("--card is not available in this build yet")
	}
	return nil, nil
}

// readCardShares reads shares from cards by serial, asking for PINs.
func readCardShares(serials []string, pinFile string, record *ceremony.SetRecord) ([]ceremony.Offered, error) {
	if len(serials) > 0 {
		return nil, usagef("--card is not available in this build yet")
	}
	return nil, nil
}

// recoverToHSM rebuilds the secret and imports it into an HSM.
func recoverToHSM(uri string, offered []ceremony.Offered, record *ceremony.SetRecord, sealed string) error {
	return usagef("--hsm is not available in this build yet")
}
