package fhir

// r4Types is every resource type of FHIR R4 (4.0.1): the concrete
// resources of https://hl7.org/fhir/R4/resourcelist.html, 146 names
// including Parameters. It was derived from the vendored schema's ResourceList
// (its first 146 entries, Account..VisionPrescription) and cross-checked
// against the R4 Patient CompartmentDefinition, which lists the same names
// except Parameters (operation-only, never persisted), and against the
// SearchParameter bases. The 57 Medplum types that follow them in the
// schema (Project, User, Bot, ...) are deliberately absent.
var r4Types = map[string]struct{}{
	"Account":                           {},
	"ActivityDefinition":                {},
	"AdverseEvent":                      {},
	"AllergyIntolerance":                {},
	"Appointment":                       {},
	"AppointmentResponse":               {},
	"AuditEvent":                        {},
	"Basic":                             {},
	"Binary":                            {},
	"BiologicallyDerivedProduct":        {},
	"BodyStructure":                     {},
	"Bundle":                            {},
	"CapabilityStatement":               {},
	"CarePlan":                          {},
	"CareTeam":                          {},
	"CatalogEntry":                      {},
	"ChargeItem":                        {},
	"ChargeItemDefinition":              {},
	"Claim":                             {},
	"ClaimResponse":                     {},
	"ClinicalImpression":                {},
	"CodeSystem":                        {},
	"Communication":                     {},
	"CommunicationRequest":              {},
	"CompartmentDefinition":             {},
	"Composition":                       {},
	"ConceptMap":                        {},
	"Condition":                         {},
	"Consent":                           {},
	"Contract":                          {},
	"Coverage":                          {},
	"CoverageEligibilityRequest":        {},
	"CoverageEligibilityResponse":       {},
	"DetectedIssue":                     {},
	"Device":                            {},
	"DeviceDefinition":                  {},
	"DeviceMetric":                      {},
	"DeviceRequest":                     {},
	"DeviceUseStatement":                {},
	"DiagnosticReport":                  {},
	"DocumentManifest":                  {},
	"DocumentReference":                 {},
	"EffectEvidenceSynthesis":           {},
	"Encounter":                         {},
	"Endpoint":                          {},
	"EnrollmentRequest":                 {},
	"EnrollmentResponse":                {},
	"EpisodeOfCare":                     {},
	"EventDefinition":                   {},
	"Evidence":                          {},
	"EvidenceVariable":                  {},
	"ExampleScenario":                   {},
	"ExplanationOfBenefit":              {},
	"FamilyMemberHistory":               {},
	"Flag":                              {},
	"Goal":                              {},
	"GraphDefinition":                   {},
	"Group":                             {},
	"GuidanceResponse":                  {},
	"HealthcareService":                 {},
	"ImagingStudy":                      {},
	"Immunization":                      {},
	"ImmunizationEvaluation":            {},
	"ImmunizationRecommendation":        {},
	"ImplementationGuide":               {},
	"InsurancePlan":                     {},
	"Invoice":                           {},
	"Library":                           {},
	"Linkage":                           {},
	"List":                              {},
	"Location":                          {},
	"Measure":                           {},
	"MeasureReport":                     {},
	"Media":                             {},
	"Medication":                        {},
	"MedicationAdministration":          {},
	"MedicationDispense":                {},
	"MedicationKnowledge":               {},
	"MedicationRequest":                 {},
	"MedicationStatement":               {},
	"MedicinalProduct":                  {},
	"MedicinalProductAuthorization":     {},
	"MedicinalProductContraindication":  {},
	"MedicinalProductIndication":        {},
	"MedicinalProductIngredient":        {},
	"MedicinalProductInteraction":       {},
	"MedicinalProductManufactured":      {},
	"MedicinalProductPackaged":          {},
	"MedicinalProductPharmaceutical":    {},
	"MedicinalProductUndesirableEffect": {},
	"MessageDefinition":                 {},
	"MessageHeader":                     {},
	"MolecularSequence":                 {},
	"NamingSystem":                      {},
	"NutritionOrder":                    {},
	"Observation":                       {},
	"ObservationDefinition":             {},
	"OperationDefinition":               {},
	"OperationOutcome":                  {},
	"Organization":                      {},
	"OrganizationAffiliation":           {},
	"Parameters":                        {},
	"Patient":                           {},
	"PaymentNotice":                     {},
	"PaymentReconciliation":             {},
	"Person":                            {},
	"PlanDefinition":                    {},
	"Practitioner":                      {},
	"PractitionerRole":                  {},
	"Procedure":                         {},
	"Provenance":                        {},
	"Questionnaire":                     {},
	"QuestionnaireResponse":             {},
	"RelatedPerson":                     {},
	"RequestGroup":                      {},
	"ResearchDefinition":                {},
	"ResearchElementDefinition":         {},
	"ResearchStudy":                     {},
	"ResearchSubject":                   {},
	"RiskAssessment":                    {},
	"RiskEvidenceSynthesis":             {},
	"Schedule":                          {},
	"SearchParameter":                   {},
	"ServiceRequest":                    {},
	"Slot":                              {},
	"Specimen":                          {},
	"SpecimenDefinition":                {},
	"StructureDefinition":               {},
	"StructureMap":                      {},
	"Subscription":                      {},
	"Substance":                         {},
	"SubstanceNucleicAcid":              {},
	"SubstancePolymer":                  {},
	"SubstanceProtein":                  {},
	"SubstanceReferenceInformation":     {},
	"SubstanceSourceMaterial":           {},
	"SubstanceSpecification":            {},
	"SupplyDelivery":                    {},
	"SupplyRequest":                     {},
	"Task":                              {},
	"TerminologyCapabilities":           {},
	"TestReport":                        {},
	"TestScript":                        {},
	"ValueSet":                          {},
	"VerificationResult":                {},
	"VisionPrescription":                {},
}

// IsR4Type reports whether name is a FHIR R4 (4.0.1) resource type, with
// exact (case-sensitive) spelling. It is false for abstract types
// (Resource, DomainResource), for data types and for non-R4 names such as
// Medplum's Project or Bot, even though the vendored schema defines them.
//
// Parameters is an R4 resource type but has no RESTful endpoint (R4
// parameters.html): use [IsStorableType] to decide what may be stored.
func IsR4Type(name string) bool {
	_, ok := r4Types[name]
	return ok
}

// IsStorableType reports whether name is an R4 resource type that can be
// created, read and searched through the REST API: every R4 type except
// Parameters. These are the 145 types of the R4 Patient compartment
// definition's resource list.
func IsStorableType(name string) bool {
	return name != "Parameters" && IsR4Type(name)
}

// R4Types returns the names of all R4 resource types (see [IsR4Type]) in
// no particular order. The slice is fresh on every call.
func R4Types() []string {
	out := make([]string, 0, len(r4Types))
	for n := range r4Types {
		out = append(out, n)
	}
	return out
}
