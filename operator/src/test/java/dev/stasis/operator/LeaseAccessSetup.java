package dev.stasis.operator;

import io.fabric8.kubernetes.api.model.authorization.v1.ResourceRule;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectRulesReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectRulesReviewBuilder;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Before the operator starts its leader election it asks the API server (SelfSubjectRulesReview)
 * whether it may use Leases. The mock server cannot evaluate RBAC, so here it answers with the
 * rules the chart's operator Role grants in the release namespace: the election then works exactly
 * as far as the chart allows it.
 */
public class LeaseAccessSetup implements Consumer<KubernetesServer> {
  static SelfSubjectRulesReview review() {
    List<ResourceRule> rules =
        Chart.grants("operator", Map.of()).stream()
            .filter(g -> "stasis-system".equals(g.namespace()))
            .map(
                g ->
                    new ResourceRule(
                        g.rule().getApiGroups(),
                        g.rule().getResourceNames(),
                        g.rule().getResources(),
                        g.rule().getVerbs()))
            .toList();
    return new SelfSubjectRulesReviewBuilder()
        .withNewMetadata()
        .endMetadata()
        .withNewSpec()
        .withNamespace("stasis-system")
        .endSpec()
        .withNewStatus()
        .withIncomplete(false)
        .withResourceRules(rules)
        .endStatus()
        .build();
  }

  @Override
  public void accept(KubernetesServer server) {
    server
        .expect()
        .post()
        .withPath("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews")
        .andReturn(201, review())
        .always();
  }
}
