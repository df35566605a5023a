package fhir

import "testing"

func TestIsR4Type(t *testing.T) {
	if n := len(R4Types()); n != 146 {
		t.Fatalf("len(R4Types()) = %d, want 146 (145 storable + Parameters)", n)
	}
	accepted := []string{"Patient", "Observation", "Bundle", "Binary", "Parameters", "VisionPrescription",
		"Account", "MedicinalProductUndesirableEffect", "SubstanceSpecification", "EffectEvidenceSynthesis"}
	for _, n := range accepted {
		if !IsR4Type(n) {
			t.Errorf("IsR4Type(%q) = false, want true", n)
		}
	}
	// Every non-R4 name the vendored (Medplum) schema lists, plus near misses.
	rejected := []string{"Project", "ClientApplication", "User", "Login", "JsonWebKey", "Bot", "AccessPolicy",
		"UserConfiguration", "ProjectMembership", "BulkDataExport", "SmartAppLaunch", "DomainConfiguration",
		"AsyncJob", "Agent", "IdentityProvider", "UserSecurityRequest", "ViewDefinition", "ProjectSetting",
		"ProjectSite", "ProjectLink", "ProjectDefaultProfile", "ProjectMembershipAccessParameter",
		"ProjectMembershipAccess", "AccessPolicyResource", "AccessPolicyIpAccessRule", "UserConfigurationMenuLink",
		"UserConfigurationMenu", "UserConfigurationSearch", "UserConfigurationOption", "BulkDataExportOutput",
		"BulkDataExportDeleted", "BulkDataExportError", "AgentSetting", "AgentChannel", "ViewDefinitionConstant",
		"ViewDefinitionSelectColumnTag", "ViewDefinitionSelectColumn", "ViewDefinitionSelect", "ViewDefinitionWhere",
		"ClientApplicationSignInForm", "ClientApplicationLaunchIdentifierSystems", "BotCdsServicePrefetch",
		"BotCdsService", "Package", "PackageRelease", "PackageInstallation", "SmartHealthLink", "SmartHealthLinkFile",
		"LoginEmailMfa", "ProjectDefaultAccessPolicies", "DicomStudy", "DicomSeries", "DicomInstance", "Enterprise",
		"EnterpriseProject", "Cron", "CronParameter",
		"", "patient", "PATIENT", "Resource", "DomainResource", "HumanName", "CodeableConcept",
		"Patient ", "Patient/1", "MedicationUsage", "DeviceDispense", "SubscriptionTopic"}
	for _, n := range rejected {
		if IsR4Type(n) {
			t.Errorf("IsR4Type(%q) = true, want false", n)
		}
	}
	if IsStorableType("Parameters") || !IsStorableType("Patient") || IsStorableType("Bot") {
		t.Error("IsStorableType: want Patient only among Parameters, Patient, Bot")
	}
}

// TestR4TypesMatchCompartment cross-checks the hard-coded list against the
// vendored Patient compartment definition, which names every storable type.
func TestR4TypesMatchCompartment(t *testing.T) {
	names := compartmentTypes(t)
	if len(names) != 145 {
		t.Fatalf("compartment definition lists %d types, want 145", len(names))
	}
	for _, n := range names {
		if !IsStorableType(n) {
			t.Errorf("compartment type %s is not storable", n)
		}
	}
	storable := 0
	for _, n := range R4Types() {
		if IsStorableType(n) {
			storable++
		}
	}
	if storable != 145 {
		t.Errorf("%d storable types, want 145", storable)
	}
}
